"""The WHIP endpoint's answers to bad and refused publishes, over a real aiohttp server on 127.0.0.1.

Each case asserts the status, the exact reason in the body, CORS headers, and
that no RTCPeerConnection is left behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ingest.whip import WHIP_SESSIONS, WhipOptions, add_whip_routes
from tests.support.whip_hub import RecordingHub
from tests.support.whip import make_offer

KEY = "live_b1_secret"
OTHER_KEY = "live_b2_other"


@pytest.fixture
async def offer() -> str:
    return await make_offer()


@pytest.fixture
def whip_hub() -> RecordingHub:
    return RecordingHub({"b1": KEY, "b2": OTHER_KEY})


@pytest.fixture
async def whip(aiohttp_client, whip_hub: RecordingHub) -> AsyncIterator[TestClient]:
    app = web.Application()
    add_whip_routes(app, lambda: whip_hub, WhipOptions(ice_hosts=("127.0.0.1",),
                                                       ice_servers=("stun:stun.example.net:3478",)))
    client = await aiohttp_client(app)
    yield client
    assert app[WHIP_SESSIONS].peer_connections == 0


def headers(key: str | None = KEY, content_type: str | None = "application/sdp") -> dict[str, str]:
    result = {}
    if key is not None:
        result["Authorization"] = f"Bearer {key}"
    if content_type is not None:
        result["Content-Type"] = content_type
    return result


async def expect_error(resp, status: int, reason: str) -> None:
    assert resp.status == status, await resp.text()
    assert (await resp.json()) == {"error": reason}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def no_peer_connections(client: TestClient) -> bool:
    return client.app[WHIP_SESSIONS].peer_connections == 0 and client.app[WHIP_SESSIONS].count == 0


@pytest.mark.parametrize("body, reason", [
    (b"garbage \x00\x01 not sdp", "invalid SDP offer: it must start with 'v=0'"),
    (b"\xff\xfe\xfa", "invalid SDP offer: not UTF-8 text"),
    (b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "SDP offer has no audio or video section"),
])
async def test_garbage_and_empty_offers_get_400(whip: TestClient, whip_hub: RecordingHub, body: bytes,
                                                reason: str) -> None:
    await expect_error(await whip.post("/whip/b1", data=body, headers=headers()), 400, reason)
    assert no_peer_connections(whip)
    assert ("whip", "bad_offer") in whip_hub.refusals


async def test_offer_without_video_gets_400(whip: TestClient) -> None:
    offer = await make_offer(video=False)
    await expect_error(await whip.post("/whip/b1", data=offer, headers=headers()), 400,
                       "SDP offer has no video section: a broadcast needs video")
    assert no_peer_connections(whip)


async def test_offer_with_only_unsupported_codecs_gets_400(whip: TestClient, offer: str) -> None:
    unsupported = offer.replace("VP8/90000", "AV1/90000").replace("H264/90000", "H265/90000")
    resp = await whip.post("/whip/b1", data=unsupported, headers=headers())
    assert resp.status == 400
    assert (await resp.json())["error"].startswith("no supported video codec in the offer (offered: AV1, rtx, H265")
    assert no_peer_connections(whip)


@pytest.mark.parametrize("key, reason", [
    (None, "missing stream key: send Authorization: Bearer <stream_key>"),
    (OTHER_KEY, "stream key does not belong to broadcast b1"),
    ("nonsense", "stream key does not belong to broadcast b1"),
])
async def test_missing_or_foreign_key_gets_401_before_any_peer_connection(
        whip: TestClient, whip_hub: RecordingHub, offer: str, key: str | None, reason: str) -> None:
    resp = await whip.post("/whip/b1", data=offer, headers=headers(key=key))
    await expect_error(resp, 401, reason)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert no_peer_connections(whip)
    assert whip_hub.sinks == []


async def test_wrong_secret_is_refused_by_the_hub_with_401(whip: TestClient, whip_hub: RecordingHub,
                                                           offer: str) -> None:
    await expect_error(await whip.post("/whip/b1", data=offer, headers=headers(key="live_b1_wrong")),
                       401, "unknown stream key")
    assert no_peer_connections(whip)
    assert whip_hub.refusals == [("whip", "bad_key")]


@pytest.mark.parametrize("code, status", [("already_live", 409), ("ended", 409), ("busy", 503)])
async def test_hub_refusals_map_to_statuses(whip: TestClient, whip_hub: RecordingHub, offer: str,
                                            code: str, status: int) -> None:
    whip_hub.refuse = (code, f"refused because {code}")
    await expect_error(await whip.post("/whip/b1", data=offer, headers=headers()), status,
                       f"refused because {code}")
    assert no_peer_connections(whip)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
async def test_wrong_content_type_gets_415(whip: TestClient, offer: str, content_type: str | None) -> None:
    resp = await whip.post("/whip/b1", data=offer.encode(), headers=headers(content_type=content_type))
    await expect_error(resp, 415, "Content-Type must be application/sdp")
    assert no_peer_connections(whip)


async def test_one_megabyte_offer_gets_413(whip: TestClient, offer: str) -> None:
    huge = offer + "a=x-padding:" + "x" * (1 << 20) + "\r\n"
    await expect_error(await whip.post("/whip/b1", data=huge.encode(), headers=headers()), 413,
                       "SDP offer larger than 65536 bytes")

    async def chunks():  # no Content-Length: the limit holds on the bytes read
        for _ in range(16):
            yield b"a=x-padding:" + b"x" * 65536 + b"\r\n"

    await expect_error(await whip.post("/whip/b1", data=chunks(), headers=headers()), 413,
                       "SDP offer larger than 65536 bytes")
    assert no_peer_connections(whip)


async def test_cors_preflight_and_patch(whip: TestClient) -> None:
    resp = await whip.options("/whip/b1", headers={"Origin": "https://studio.example",
                                                   "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "authorization,content-type"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed
    assert resp.headers["Accept-Post"] == "application/sdp"
    resp = await whip.patch("/whip/b1/sessions/nope", data=b"", headers=headers(content_type="application/trickle-ice-sdpfrag"))
    await expect_error(resp, 404, "unknown WHIP session")
    resp = await whip.delete("/whip/b1/sessions/nope", headers=headers())
    await expect_error(resp, 404, "unknown WHIP session")


async def test_accepted_publish_answers_201_with_whip_headers(whip: TestClient, whip_hub: RecordingHub,
                                                              offer: str) -> None:
    resp = await whip.post("/whip/b1", data=offer, headers={**headers(), "Origin": "https://studio.example"})
    assert resp.status == 201, await resp.text()
    assert resp.headers["Content-Type"] == "application/sdp"
    location = resp.headers["Location"]
    assert location.startswith("/whip/b1/sessions/")
    assert resp.headers["ETag"].startswith('"')
    assert resp.headers.getall("Link") == ['<stun:stun.example.net:3478>; rel="ice-server"']
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Link", "ETag"} <= exposed
    answer = await resp.text()
    candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates), candidates
    assert whip.app[WHIP_SESSIONS].peer_connections == 1

    # trickle ICE is not offered: a documented 405
    resp = await whip.patch(location, data=b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host",
                            headers=headers(content_type="application/trickle-ice-sdpfrag"))
    await expect_error(resp, 405, "trickle ICE and ICE restarts are not supported: send all candidates in the "
                                  "offer (wait for ICE gathering to complete)")
    assert resp.headers["Allow"] == "OPTIONS, DELETE"
    # a second publisher on the same broadcast is refused while the first holds it
    await expect_error(await whip.post("/whip/b1", data=offer, headers=headers()), 409,
                       "broadcast b1 already has a publisher")
    # DELETE needs the stream key, then ends the publish
    await expect_error(await whip.delete(location, headers=headers(key=OTHER_KEY)), 401,
                       "the session's stream key is required: send Authorization: Bearer <stream_key>")
    resp = await whip.delete(location, headers=headers())
    assert resp.status == 200
    assert whip_hub.sinks[0].close_reason == "DELETE"
    assert no_peer_connections(whip)
    await expect_error(await whip.delete(location, headers=headers()), 404, "unknown WHIP session")


async def test_offer_aiortc_cannot_use_gets_400_and_its_peer_connection_is_closed(whip: TestClient) -> None:
    # passes the edge's own checks (video, H264, sendonly) but carries no ICE credentials
    offer = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
             "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n")
    await expect_error(await whip.post("/whip/b1", data=offer, headers=headers()), 400,
                       "invalid SDP offer: the video section has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
    assert no_peer_connections(whip)


async def test_shutdown_ends_live_sessions(aiohttp_server, whip_hub: RecordingHub, offer: str) -> None:
    app = web.Application()
    add_whip_routes(app, whip_hub, WhipOptions(ice_hosts=("127.0.0.1",)))
    server = await aiohttp_server(app)
    client = TestClient(server)
    await client.start_server()
    resp = await client.post("/whip/b1", data=offer, headers=headers())
    assert resp.status == 201
    assert app[WHIP_SESSIONS].peer_connections == 1
    await client.close()  # the app cleans up: every session ends, its sink is closed
    assert whip_hub.sinks[0].close_reason == "shutdown"
    assert app[WHIP_SESSIONS].peer_connections == 0
