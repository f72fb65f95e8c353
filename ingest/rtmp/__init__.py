"""onair's own RTMP ingest: handshake, chunk stream, AMF0, session, server.

Parsing lives in pure modules (``handshake``, ``chunk``, ``amf0``,
``messages``, ``session``); only ``server`` does I/O.
"""

from ingest.rtmp.errors import AmfError, ChunkStreamError, CommandError, HandshakeError, RtmpProtocolError
from ingest.rtmp.server import RtmpServer

__all__ = ["AmfError", "ChunkStreamError", "CommandError", "HandshakeError", "RtmpProtocolError", "RtmpServer"]
