"""WebRTC ingest over WHIP (RFC 9725): the endpoint, its aiortc sessions, and the re-encoding into the node's units.

The node mounts it with :func:`add_whip_routes`; see ``endpoint.py`` for the
routes, ``session.py`` for the life of one publish, ``encoder.py`` for the
media conversion and ``ice.py`` for the ICE host restriction.
"""

from ingest.whip.encoder import EncoderOptions
from ingest.whip.endpoint import WHIP_SESSIONS, WhipOptions, add_whip_routes
from ingest.whip.sessions import WhipSessions

__all__ = ["WHIP_SESSIONS", "EncoderOptions", "WhipOptions", "WhipSessions", "add_whip_routes"]
