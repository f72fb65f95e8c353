"""The PyAV transcoder: the rendition ladder and the worker process that runs it.

``ladder`` is pure configuration; ``worker`` is a separate process
(``python -m ingest.transcode.worker``) so that decoding and encoding never run
in the node's event loop and a crash in libav only costs one broadcast its
worker.
"""
