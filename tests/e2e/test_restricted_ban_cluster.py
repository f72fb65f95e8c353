"""Two nodes on one Redis: a viewer of a restricted broadcast banned on node A loses playback and chat on
A and on B (the node with the video) within 10 s; other viewers go on; revoking the broadcast's viewer
tokens on A ends every earlier grant on B too."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.support.playback import get, viewer_token, wait_live_playlist
from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e

WITHIN = 10.0


class ChatClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def join(cls, http: aiohttp.ClientSession, url: str, token: str) -> tuple["ChatClient", dict]:
        ws = await http.ws_connect(url)
        await ws.send_json({"type": "hello", "token": token})
        return cls(ws), await ws.receive_json(timeout=10)

    async def comment(self, text: str) -> dict:
        """Post ``text``; the first answer about it: the comment itself or an error."""
        await self.ws.send_json({"type": "comment", "text": text})
        while True:
            msg = await self.ws.receive(timeout=10)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            doc = json.loads(msg.data)
            if doc["type"] == "error" or (doc["type"] == "comment" and doc["text"] == text):
                return doc


async def within(what: str, check, started: float) -> float:
    """Seconds from ``started`` until ``check()`` holds; fails past WITHIN."""
    while not await check():
        assert time.monotonic() - started < WITHIN, f"{what}: not within {WITHIN} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def test_a_ban_on_one_node_ends_playback_and_chat_on_both(node_factory, redis_url):
    a = node_factory(redis_url=redis_url, ladder="source")
    b = node_factory(redis_url=redis_url, ladder="source")
    doc = a.create_broadcast("private", visibility="restricted")
    host = {"Authorization": f"Bearer {doc['host_token']}"}
    publisher = ffmpeg_publish(b.rtmp_url(doc["stream_key"]), seconds=60, gop=25)
    b.wait_status(doc["id"], "live", timeout=15)
    ann, bob = viewer_token(a, doc["id"], "Ann"), viewer_token(a, doc["id"], "Bob")
    playlist = {node: f"{node.base}/hls/{doc['id']}/source/index.m3u8?grant=" for node in (a, b)}

    async def scenario() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await wait_live_playlist(http, playlist[b] + ann["grant"])
            # The video is on B; A streams it through from B, whose gate checks the grant.
            assert (await get(http, playlist[a] + ann["grant"]))[0] == 200
            chats = {}
            for node in (a, b):
                client, first = await ChatClient.join(http, f"{node.ws_base}/ws/{doc['id']}", ann["token"])
                assert first["type"] == "history", first
                assert (await client.comment(f"hello from {node.base}"))["type"] == "comment"
                chats[node] = client
            bobs_chat, _ = await ChatClient.join(http, f"{b.ws_base}/ws/{doc['id']}", bob["token"])

            started = time.monotonic()
            status, _ = a.request("POST", f"/api/broadcasts/{doc['id']}/moderation/viewers/{ann['viewer_id']}/ban",
                                  {"reason": "harassment"}, token=None, headers=host)
            assert status == 200

            async def playback_refused(node) -> bool:
                status, _, body = await get(http, playlist[node] + ann["grant"])
                return status == 403 and json.loads(body) == {"error": "this viewer is banned from the broadcast"}

            async def chat_refused(node) -> bool:
                answer = await chats[node].comment(f"still here {time.monotonic()}")
                return answer["type"] == "error" and answer["code"] == "banned"

            async def join_refused(node) -> bool:
                client, first = await ChatClient.join(http, f"{node.ws_base}/ws/{doc['id']}", ann["token"])
                await client.ws.close()
                return first["type"] == "error" and first["code"] == "unauthorized"

            took = {}
            for node, name in ((a, "A"), (b, "B")):
                took[f"playback on {name}"] = await within(f"playback on {name}", lambda: playback_refused(node), started)
                took[f"chat on {name}"] = await within(f"chat on {name}", lambda: chat_refused(node), started)
                took[f"join on {name}"] = await within(f"join on {name}", lambda: join_refused(node), started)
            print("refused after (s):", {k: round(v, 2) for k, v in took.items()})
            # Bob is not concerned.
            status, _, body = await get(http, playlist[b] + bob["grant"])
            assert status == 200 and b"#EXT-X-PART:" in body
            assert (await bobs_chat.comment("bob goes on"))["type"] == "comment"

            # Revoking every viewer token on A: Bob's grant and token end on B too; a new one works.
            started = time.monotonic()
            status, result = a.request("POST", f"/api/broadcasts/{doc['id']}/moderation/revoke-viewer-tokens", {},
                                       token=None, headers=host)
            assert status == 200 and result == {"epoch": 1}

            async def revoked() -> bool:
                status, _, body = await get(http, playlist[b] + bob["grant"])
                return status == 403 and json.loads(body) == {"error": "playback grant was revoked"}

            await within("revocation on B", revoked, started)
            newer = viewer_token(b, doc["id"], "Bob")
            assert (await get(http, playlist[b] + newer["grant"]))[0] == 200
            client, first = await ChatClient.join(http, f"{a.ws_base}/ws/{doc['id']}", newer["token"])
            assert first["type"] == "history"
            await client.ws.close()
            for client in (*chats.values(), bobs_chat):
                await client.ws.close()

    asyncio.run(scenario())
    publisher.terminate()
    publisher.wait(timeout=30)
