"""The video path of onair: publishers in (RTMP, WHIP), HLS out.

Edges (``ingest.rtmp``, ``ingest.whip``) adapt each protocol into one stream of
codec-typed :class:`ingest.media.MediaUnit` values, handed to an
:class:`ingest.source.IngestHub`.  The transcoder and HLS packager consume those
units in a worker process per broadcast.
"""
