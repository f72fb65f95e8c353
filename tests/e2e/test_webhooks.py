"""Webhooks against real nodes and a real HTTP receiver: signed per Standard Webhooks (checked with the
``standardwebhooks`` package), retried with back-off, once per cluster with Redis, and the API's gates."""

from __future__ import annotations

import json
import stat
import time
from collections import Counter

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.node import ADMIN_TOKEN
from tests.support.publish import ffmpeg_publish
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def receiver():
    started: list[WebhookReceiver] = []

    def start(answer=None) -> WebhookReceiver:
        r = WebhookReceiver(answer).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def register(node, url: str, events: list[str]) -> dict:
    status, doc = node.request("POST", "/api/webhooks", {"url": url, "events": events})
    assert status == 201, doc
    return doc


def delivery_log(node, endpoint_id: str, count: int, timeout: float = 10) -> list[dict]:
    """The endpoint's delivery log (oldest first) once it has ``count`` attempts: each is logged just after
    its receiver answered, so right after the receiver got a request its attempt may not be there yet."""
    deadline = time.monotonic() + timeout
    while True:
        status, doc = node.request("GET", f"/api/webhooks/{endpoint_id}/deliveries")
        assert status == 200, doc
        if len(doc["deliveries"]) >= count or time.monotonic() > deadline:
            return list(reversed(doc["deliveries"]))
        time.sleep(0.1)


def types(received) -> list[str]:
    return [json.loads(r.body)["type"] for r in received]


def test_receiver_gets_live_and_ended_with_valid_signatures(node_factory, receiver, ffmpeg):
    node = node_factory(ladder="source", reconnect_grace=60)  # ended by the API, not by the grace
    hook = receiver()
    wanted = ["broadcast.live", "broadcast.reconnecting", "broadcast.ended", "recording.ready"]
    doc = register(node, hook.url, wanted)
    assert doc["secret"].startswith("whsec_") and doc["events"] == wanted
    # the secret is kept 0600 in the data dir, and never shown again
    path = node.data_dir / "webhooks.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status, listed = node.request("GET", "/api/webhooks")
    assert status == 200 and listed["webhooks"][0]["id"] == doc["id"] and "secret" not in listed["webhooks"][0]
    assert doc["secret"] not in node.log()

    broadcast = node.create_broadcast("hooked")
    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), seconds=30)
    try:
        node.wait_status(broadcast["id"], "live", timeout=15)
        hook.wait_for(lambda got: "broadcast.live" in types(got), timeout=15)
        deadline = time.monotonic() + 20  # a couple of segments, so there is a recording to make
        while (node.broadcast(broadcast["id"]).get("live") or {}).get("transcoder", {}).get("segments_written", 0) < 2:
            assert time.monotonic() < deadline, "no segments written"
            time.sleep(0.2)
    finally:
        publisher.kill()  # the publisher drops: reconnecting, then ended through the API
        publisher.wait()
    node.wait_status(broadcast["id"], "reconnecting", timeout=10)
    status, _ = node.request("POST", f"/api/broadcasts/{broadcast['id']}/end")
    assert status == 200
    got = hook.wait_for(lambda got: "recording.ready" in types(got), timeout=30)
    verifier = Webhook(doc["secret"])
    # in order, and not broadcast.created (not subscribed)
    assert types(got) == wanted
    ready = json.loads(got[-1].body)["data"]
    assert ready["url"] == f"/api/broadcasts/{broadcast['id']}/recording" and ready["duration"] > 0
    for request in got:
        payload = verifier.verify(request.body, request.headers)
        assert payload["data"]["broadcast_id"] == broadcast["id"]
        assert request.headers["webhook-id"].startswith("msg_")
        assert request.headers["webhook-signature"].startswith("v1,")
    # the delivery log shows each attempt with the receiver's status
    assert [(d["event"], d["status"], d["outcome"]) for d in delivery_log(node, doc["id"], len(wanted))] == [
        (event, 200, "delivered") for event in wanted]


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(node_factory, receiver):
    node = node_factory(webhook_retry_base=0.3)
    answers = iter([500, 500])
    hook = receiver(lambda headers, body: next(answers, 200))
    doc = register(node, hook.url, ["broadcast.created"])
    broadcast = node.create_broadcast("retried")
    got = hook.wait_for(lambda got: any(r.answered == 200 for r in got), timeout=20)
    assert [r.answered for r in got] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in got}) == 1  # one message, tried three times
    # later attempts carry their own timestamp, each signed
    for request in got:
        Webhook(doc["secret"]).verify(request.body, request.headers)
    assert got[1].at - got[0].at >= 0.25 and got[2].at - got[1].at >= 0.5  # backed off, doubling
    log = delivery_log(node, doc["id"], 3)
    assert [(d["attempt"], d["status"], d["outcome"]) for d in log] == [
        (1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "delivered")]
    assert all(d["broadcast_id"] == broadcast["id"] for d in log)
    metrics = node.metrics()
    assert 'onair_webhook_attempts_total{outcome="retrying"} 2.0' in metrics
    assert 'onair_webhook_attempts_total{outcome="delivered"} 1.0' in metrics


def test_two_nodes_on_redis_deliver_each_event_once(node_factory, receiver, redis_url):
    first = node_factory(redis_url=redis_url, webhook_retry_base=0.2)
    second = node_factory(redis_url=redis_url, webhook_retry_base=0.2)
    # every message fails its first try, so its retry is due on Redis where both nodes' deliverers look
    seen: Counter[str] = Counter()

    def answer(headers, body):
        seen[headers["webhook-id"]] += 1
        return 500 if seen[headers["webhook-id"]] == 1 else 200

    hook = receiver(answer)
    register(first, hook.url, ["broadcast.created", "broadcast.ended"])  # registered on one node: the cluster's
    created = [(first if i % 2 else second).create_broadcast(f"b{i}") for i in range(6)]
    for i, doc in enumerate(created):  # ended through the other node than the one that created it
        status, _ = (second if i % 2 else first).request("POST", f"/api/broadcasts/{doc['id']}/end")
        assert status == 200
    hook.wait_for(lambda got: sum(r.answered == 200 for r in got) >= 12, timeout=30)
    time.sleep(1.5)  # long enough for a duplicate (a retry is due 0.2 s after a failure) to show up
    got = hook.snapshot()
    delivered = Counter(r.headers["webhook-id"] for r in got if r.answered == 200)
    assert len(delivered) == 12 and set(delivered.values()) == {1}, delivered
    assert Counter(r.headers["webhook-id"] for r in got) == Counter({k: 2 for k in delivered})
    # in order per broadcast: created before ended
    for doc in created:
        mine = [json.loads(r.body)["type"] for r in got
                if r.answered == 200 and json.loads(r.body)["data"]["broadcast_id"] == doc["id"]]
        assert mine == ["broadcast.created", "broadcast.ended"]


def test_webhook_api_gates_and_hostile_input(node):
    for token in (None, "wrong_" + "x" * 30, ADMIN_TOKEN[:-1] + "X"):
        for method, path in (("POST", "/api/webhooks"), ("GET", "/api/webhooks"),
                             ("DELETE", "/api/webhooks/wh_x"), ("GET", "/api/webhooks/wh_x/deliveries")):
            status, doc = node.request(method, path, {"url": "http://127.0.0.1/", "events": ["broadcast.live"]},
                                       token=token)
            assert status == 401 and "error" in doc, (method, path, token, doc)
    bad = [
        ({"url": "ftp://127.0.0.1/h", "events": ["broadcast.live"]}, "http or https"),
        ({"url": "javascript:alert(1)", "events": ["broadcast.live"]}, "http or https"),
        ({"url": "http://u:p@127.0.0.1/", "events": ["broadcast.live"]}, "credentials"),
        ({"url": "http://127.0.0.1/\r\nX: y", "events": ["broadcast.live"]}, "control"),
        ({"url": 5, "events": ["broadcast.live"]}, "'url'"),
        ({"url": "http://127.0.0.1/"}, "'events'"),
        ({"url": "http://127.0.0.1/", "events": []}, "'events'"),
        ({"url": "http://127.0.0.1/", "events": "broadcast.live"}, "'events'"),
        ({"url": "http://127.0.0.1/", "events": [1]}, "'events'"),
        ({"url": "http://127.0.0.1/", "events": ["broadcast.exploded"]}, "unknown event"),
    ]
    for body, message in bad:
        status, doc = node.request("POST", "/api/webhooks", body)
        assert status == 400 and message in doc["error"], (body, doc)
    status, doc = node.request("POST", "/api/webhooks", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400
    status, doc = node.request("GET", "/api/webhooks")
    assert doc == {"webhooks": []}  # nothing stored by any of those
    assert not (node.data_dir / "webhooks.json").exists()
    created = node.request("POST", "/api/webhooks", {"url": "http://127.0.0.1:1/", "events": ["broadcast.live"]})[1]
    assert node.request("DELETE", f"/api/webhooks/{created['id']}")[0] == 204
    assert node.request("DELETE", f"/api/webhooks/{created['id']}")[0] == 404
    assert node.request("GET", "/api/webhooks")[1] == {"webhooks": []}


async def test_a_comment_held_for_review_is_announced_without_its_text(node, receiver):
    import asyncio

    import aiohttp

    from tests.broadcaster.chat_support import connect

    hook = receiver()
    doc = register(node, hook.url, ["comment.held"])
    b = node.create_broadcast("moderated")
    async with aiohttp.ClientSession() as session:
        author = await connect(f"{node.ws_base}/ws/{b['id']}", session, name="author")
        await author.comment("nobody wants you here, idiot")
        held = await author.expect("error", code="held_for_review")
        await author.ws.close()
    got = await asyncio.to_thread(hook.wait_for, lambda got: len(got) >= 1, 15)
    payload = Webhook(doc["secret"]).verify(got[0].body, got[0].headers)
    assert payload["type"] == "comment.held"
    assert payload["data"]["broadcast_id"] == b["id"] and payload["data"]["held_id"] == held["held_id"]
    assert payload["data"]["reason"] == held["reason"]
    assert b"idiot" not in got[0].body  # the console shows the text; a webhook only says one waits


def test_a_receiver_that_hangs_delays_nobody_else(node, receiver):
    import threading

    release = threading.Event()
    hanging = receiver(lambda headers, body: 200 if release.wait(60) else 500)
    fine = receiver()
    slow_doc = register(node, hanging.url, ["broadcast.created"])
    register(node, fine.url, ["broadcast.created"])
    try:
        b = node.create_broadcast("one slow receiver")
        got = fine.wait_for(lambda got: len(got) == 1, timeout=15)
        assert json.loads(got[0].body)["data"]["broadcast_id"] == b["id"]
        # the other receiver's request is still open: no attempt of it has finished, the node answers
        status, log = node.request("GET", f"/api/webhooks/{slow_doc['id']}/deliveries")
        assert status == 200 and log["deliveries"] == [] and hanging.snapshot() == []
        assert node.request("GET", "/healthz")[0] == 200
    finally:
        release.set()


def test_a_simulcast_destination_that_refuses_the_key_is_simulcast_failed(node_factory, receiver, ffmpeg):
    node = node_factory(ladder="source")
    destination = node_factory(ladder="source")  # another onair node: it refuses an unknown stream key
    hook = receiver()
    doc = register(node, hook.url, ["simulcast.failed"])
    broadcast = node.create_broadcast("forwarded")
    status, target = node.request("POST", f"/api/broadcasts/{broadcast['id']}/simulcast",
                                  {"url": f"rtmp://127.0.0.1:{destination.rtmp_port}/live",
                                   "stream_key": "live_nobody_" + "x" * 24, "name": "refusing"})
    assert status == 201, target
    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), seconds=20)
    try:
        got = hook.wait_for(lambda got: len(got) >= 1, timeout=30)
    finally:
        publisher.kill()
        publisher.wait()
    payload = Webhook(doc["secret"]).verify(got[0].body, got[0].headers)
    assert payload["type"] == "simulcast.failed"
    assert payload["data"]["broadcast_id"] == broadcast["id"] and payload["data"]["target_id"] == target["id"]
    assert "x" * 24 not in got[0].body.decode()  # the destination's key never leaves the node
