"""WHIP helpers for tests: a real SDP offer from aiortc, gathered on loopback only."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection

from ingest.whip.ice import restrict_host_addresses
from tests.support.synthetic import PatternVideoTrack, ToneAudioTrack


async def make_offer(video: bool = True, audio: bool = True) -> str:
    """A real browser-like offer from aiortc (ICE on loopback only); its peer connection is closed."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        if video:
            pc.addTransceiver(PatternVideoTrack(), direction="sendonly")
        if audio:
            pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
        with restrict_host_addresses(("127.0.0.1",)):
            await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()
