"""Checks on a WHIP SDP offer before any peer connection exists, free of I/O.

A malformed offer is a 400 with the reason, never an error inside aiortc.

aiortc accepts a lot and fails late (or answers with every section rejected);
these checks turn the common bad offers into one exact reason each, so the
publisher learns what is wrong and the node never builds a peer connection for
an offer it cannot use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiortc.sdp import SessionDescription

from ingest.whip.errors import OfferError

#: codecs the WHIP edge decodes (aiortc); names as in ``a=rtpmap`` (case-insensitive)
VIDEO_CODECS = ("H264", "VP8")
AUDIO_CODECS = ("opus",)


@dataclass(frozen=True)
class MediaSection:
    kind: str
    codecs: tuple[str, ...]
    direction: str


@dataclass(frozen=True)
class OfferSummary:
    sections: tuple[MediaSection, ...] = field(default_factory=tuple)

    @property
    def video_codec(self) -> str | None:
        for section in self.sections:
            if section.kind == "video":
                return _first_supported(section.codecs, VIDEO_CODECS)
        return None

    @property
    def audio_codec(self) -> str | None:
        for section in self.sections:
            if section.kind == "audio":
                return _first_supported(section.codecs, AUDIO_CODECS)
        return None


def _first_supported(codecs: tuple[str, ...], supported: tuple[str, ...]) -> str | None:
    wanted = {c.lower() for c in supported}
    return next((c for c in codecs if c.lower() in wanted), None)


def parse_offer(text: str) -> OfferSummary:
    """Parse the parts of an SDP offer the edge decides on, or raise :class:`OfferError`."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        raise OfferError("invalid SDP offer: it must start with 'v=0'")
    for number, line in enumerate(lines, 1):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise OfferError(f"invalid SDP offer: line {number} is not '<type>=<value>'")
    sections: list[MediaSection] = []
    current: dict[str, Any] | None = None

    def finish() -> None:
        if current is not None:
            codecs = tuple(current["rtpmap"].get(pt, "") for pt in current["pts"])
            sections.append(MediaSection(current["kind"], tuple(c for c in codecs if c), current["direction"]))

    for line in lines:
        kind, value = line[0], line[2:]
        if kind == "m":
            finish()
            parts = value.split()
            if len(parts) < 4:
                raise OfferError(f"invalid SDP offer: malformed media line 'm={value[:80]}'")
            current = {"kind": parts[0], "pts": parts[3:], "rtpmap": {}, "direction": "sendrecv",
                       "port": parts[1]}
        elif current is not None and kind == "a":
            if value.startswith("rtpmap:"):
                pt, _, rest = value[len("rtpmap:"):].partition(" ")
                current["rtpmap"][pt] = rest.split("/", 1)[0].strip()
            elif value in ("sendrecv", "sendonly", "recvonly", "inactive"):
                current["direction"] = value
    finish()
    return OfferSummary(tuple(sections))


def check_transport(text: str) -> None:
    """Parse the offer as aiortc will, and check each media section carries what ICE and DTLS need.

    aiortc's parser and ``setRemoteDescription`` fail on a malformed offer with
    whatever Python error the bad line happens to cause (``AssertionError``,
    ``IndexError``, ``AttributeError`` ...); here every one of them is an
    :class:`OfferError` (400) before a peer connection exists.
    """
    try:
        description = SessionDescription.parse(text)
    except Exception as exc:  # noqa: BLE001 - any failure of the parser is a malformed offer
        detail = str(exc) or type(exc).__name__
        raise OfferError(f"invalid SDP offer: aiortc cannot parse it ({detail[:120]})") from None
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(f"invalid SDP offer: the {media.kind} section has no ICE credentials "
                             "(a=ice-ufrag, a=ice-pwd)")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(f"invalid SDP offer: the {media.kind} section has no DTLS fingerprint and role "
                             "(a=fingerprint, a=setup)")


def check_offer(text: str) -> OfferSummary:
    """The offer if WHIP ingest can take it; otherwise :class:`OfferError` with the reason."""
    summary = parse_offer(text)
    media = [s for s in summary.sections if s.kind in ("audio", "video")]
    if not media:
        raise OfferError("SDP offer has no audio or video section")
    videos = [s for s in media if s.kind == "video"]
    audios = [s for s in media if s.kind == "audio"]
    if not videos:
        raise OfferError("SDP offer has no video section: a broadcast needs video")
    if len(videos) > 1 or len(audios) > 1:
        raise OfferError("SDP offer has more than one video or audio section: send one of each")
    for section in media:
        if section.direction not in ("sendonly", "sendrecv"):
            raise OfferError(f"SDP offer's {section.kind} section is {section.direction}: WHIP needs sendonly")
    if summary.video_codec is None:
        offered = ", ".join(videos[0].codecs) or "none"
        raise OfferError(f"no supported video codec in the offer (offered: {offered}; supported: "
                         f"{', '.join(VIDEO_CODECS)})")
    if audios and summary.audio_codec is None:
        offered = ", ".join(audios[0].codecs) or "none"
        raise OfferError(f"no supported audio codec in the offer (offered: {offered}; supported: "
                         f"{', '.join(AUDIO_CODECS)})")
    check_transport(text)
    return summary
