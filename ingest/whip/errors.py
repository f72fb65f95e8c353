"""Errors of the WHIP edge, one tree: every refusal carries its HTTP status and an exact reason.

::

    WhipError(Exception)            status, reason (the response body)
    └── OfferError(WhipError, ValueError)   the SDP offer itself is unacceptable (400)
"""

from __future__ import annotations


class WhipError(Exception):
    """A WHIP request is refused with ``status`` and ``reason`` (sent as the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OfferError(WhipError, ValueError):
    """The SDP offer cannot be used: malformed, no media, no supported codec."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(status, reason)
