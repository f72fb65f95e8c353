"""A small WHIP client on aiortc: publishes tracks to a WHIP endpoint (tests, benchmarks, relaying).

ICE is gathered only on ``ice_hosts`` (see :mod:`ingest.whip.ice`) and no
STUN server is used unless given, so a client with ``ice_hosts=("127.0.0.1",)``
never sends to any other address.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urljoin

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from ingest.whip.ice import restrict_host_addresses


class WhipClientError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"WHIP endpoint answered {status}: {body}")
        self.status = status
        self.body = body


class WhipClient:
    def __init__(self, endpoint_url: str, stream_key: str, *, ice_hosts: tuple[str, ...] = ("127.0.0.1",),
                 video_codec: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.stream_key = stream_key
        self.ice_hosts = ice_hosts
        self.video_codec = video_codec
        self.pc: RTCPeerConnection | None = None
        self.session_url: str | None = None
        self.answer: str | None = None
        self.response_headers: dict[str, list[str]] = {}

    async def publish(self, tracks: list[MediaStreamTrack], timeout: float = 10.0) -> None:
        """Offer the tracks (sendonly), POST the offer, apply the answer.  Raises WhipClientError."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        for track in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video" and self.video_codec:
                codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs
                          if c.mimeType.lower() == f"video/{self.video_codec.lower()}"]
                transceiver.setCodecPreferences(codecs)
        with restrict_host_addresses(self.ice_hosts):
            await pc.setLocalDescription(await pc.createOffer())
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {self.stream_key}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(self.endpoint_url, data=pc.localDescription.sdp.encode(), headers=headers) as resp:
                body = await resp.text()
                self.response_headers = {k: resp.headers.getall(k) for k in set(resp.headers.keys())}
                if resp.status != 201:
                    await self.close()
                    raise WhipClientError(resp.status, body)
                self.session_url = urljoin(self.endpoint_url, resp.headers["Location"])
        self.answer = body
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def delete(self, timeout: float = 10.0) -> int:
        """DELETE the session resource; returns the status."""
        assert self.session_url is not None, "not published"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.delete(self.session_url,
                                   headers={"Authorization": f"Bearer {self.stream_key}"}) as resp:
                await resp.read()
                return resp.status

    def vanish(self) -> None:
        """Simulate the network going away: close the UDP sockets under ICE without a word to the server."""
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            ice = transceiver.sender.transport.transport
            for protocol in list(ice.iceGatherer._connection._protocols):
                if protocol.transport is not None:
                    protocol.transport.abort()

    async def close(self) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
            self.pc = None

    async def stop(self) -> None:
        """DELETE (if published) and close the peer connection."""
        try:
            if self.session_url is not None:
                await self.delete()
                self.session_url = None
        finally:
            await self.close()
