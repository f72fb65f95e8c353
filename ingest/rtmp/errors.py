"""The RTMP edge's one error tree (every parser raises only these).

::

    ValueError
     └── RtmpProtocolError          (.code: short reason for metrics/logs)
          ├── HandshakeError        garbage or a wrong version instead of C0/C1/C2
          ├── ChunkStreamError      bad chunk headers, chunk sizes, message sizes
          ├── AmfError              malformed or too deeply nested AMF0
          └── CommandError          a command/control message that makes no sense

``code`` is what the server hands to ``IngestHub.record_refusal``; the message
(``str(error)``) is exact and safe to log (it never contains a stream key).
"""

from __future__ import annotations


class RtmpProtocolError(ValueError):
    """Root of every error the RTMP parsers raise."""

    default_code = "protocol_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code


class HandshakeError(RtmpProtocolError):
    default_code = "bad_handshake"


class ChunkStreamError(RtmpProtocolError):
    default_code = "bad_chunk"


class AmfError(RtmpProtocolError):
    default_code = "bad_amf"


class CommandError(RtmpProtocolError):
    default_code = "bad_command"
