"""The HLS packager: playlist text (pure), codec strings, and the on-disk store.

Segments are written by the transcode worker; the node owns the playlists
(``ingest.pipeline``) and writes them atomically through ``store``.
"""
