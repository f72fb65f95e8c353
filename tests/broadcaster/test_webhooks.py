"""Webhooks, piece by piece: the signature (checked by the standardwebhooks package), the URL check,
the back-off, and the per-broadcast order of the local store."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from broadcaster.webhooks import signing
from broadcaster.webhooks.delivery import MAX_BACKOFF, backoff
from broadcaster.webhooks.events import EventType, WebhookEvent, status_event
from broadcaster.webhooks.store import LocalWebhookStore, queue_name
from broadcaster.webhooks.urls import validate_url


def test_secret_is_whsec_and_32_random_bytes():
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert secret != signing.new_secret()


def test_signature_verifies_with_the_standardwebhooks_package():
    secret = signing.new_secret()
    event = status_event("abc123", "live", "Title")
    assert event is not None
    body = event.body()
    now = int(time.time())
    headers = signing.headers(secret, event.id, now, body)
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "broadcast.live" and payload["data"]["broadcast_id"] == "abc123"
    # a tampered body, another secret or another id are refused by the independent verifier
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"abc123", b"abc124"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_other"})


def test_signature_matches_the_spec_by_hand():
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    import hashlib
    import hmac
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest()).decode()
    assert signing.sign(secret, "msg_1", 1700000000, b"{}") == "v1," + expected


@pytest.mark.parametrize("url,message", [
    (None, "required"),
    (42, "required"),
    ("", "required"),
    ("ftp://example.com/hook", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("http:///nohost", "no host"),
    ("http://user:pw@example.com/", "credentials"),
    ("http://example.com/a b", "spaces or control"),
    ("http://example.com/\r\nX-Injected: 1", "spaces or control"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://example.com:port/", "not a valid URL"),
    ("http://example.com/#frag", "fragment"),
    ("http://example.com/" + "a" * 3000, "longer than"),
    ("http://[::1/", "not a valid URL"),
])
def test_hostile_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(ValueError, match=message):
        validate_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://hooks.example.com/onair?x=1",
                                 "http://[::1]:9000/"])
def test_good_urls_pass(url):
    assert validate_url(url) == url


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(5, n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(5, 40) == MAX_BACKOFF


def test_event_body_round_trip():
    event = WebhookEvent(EventType.COMMENT_HELD, "b1", {"held_id": "h_1", "reason": "spam"})
    again = WebhookEvent.from_json(event.to_json())
    assert again == event
    body = json.loads(event.body())
    assert body["type"] == "comment.held" and body["data"] == {"broadcast_id": "b1", "held_id": "h_1",
                                                               "reason": "spam"}
    assert body["timestamp"].endswith("Z")


async def test_local_store_serves_one_broadcast_in_order_and_others_beside_it(tmp_path):
    store = LocalWebhookStore(tmp_path / "webhooks.json")
    await store.open()
    first, second = (WebhookEvent(EventType.BROADCAST_LIVE, "b1"), WebhookEvent(EventType.BROADCAST_ENDED, "b1"))
    other = WebhookEvent(EventType.BROADCAST_LIVE, "b2")
    for event in (first, second, other):
        await store.enqueue(["wh_1"], event)
    claimed = await store.claim(time.time(), 10)
    assert sorted(claimed) == [queue_name("wh_1", "b1"), queue_name("wh_1", "b2")]
    assert await store.claim(time.time(), 10) == []  # claimed queues are not handed out twice
    q = queue_name("wh_1", "b1")
    head = await store.head(q)
    assert head == (first, 0)
    # the head fails: the next event waits behind it
    await store.retry(q, time.time() + 60)
    assert await store.head(q) == (first, 1)
    assert q not in await store.claim(time.time(), 10)
    await store.delivered(q, first.id)
    assert await store.head(q) == (second, 0)


async def test_local_store_bounds_each_queue(tmp_path):
    from broadcaster.webhooks.store import MAX_PENDING

    store = LocalWebhookStore(tmp_path / "webhooks.json")
    for _ in range(MAX_PENDING):
        assert await store.enqueue(["wh_1"], WebhookEvent(EventType.BROADCAST_LIVE, "b1")) == []
    assert await store.enqueue(["wh_1", "wh_2"], WebhookEvent(EventType.BROADCAST_ENDED, "b1")) == ["wh_1"]
    assert await store.enqueue(["wh_1"], WebhookEvent(EventType.BROADCAST_ENDED, "b2")) == []  # another queue


async def test_redis_store_one_claim_per_queue_across_nodes_in_order_and_bounded(redis_url):
    from redis.asyncio import Redis

    from broadcaster.webhooks.store import MAX_PENDING
    from broadcaster.webhooks.store_redis import P, RedisWebhookStore

    client = Redis.from_url(redis_url)
    try:
        a, b = RedisWebhookStore(client, claim_seconds=0.5), RedisWebhookStore(client, claim_seconds=0.5)
        first, second = WebhookEvent(EventType.BROADCAST_LIVE, "b1"), WebhookEvent(EventType.BROADCAST_ENDED, "b1")
        assert await a.enqueue(["wh_1"], first) == [] and await b.enqueue(["wh_1"], second) == []
        q = queue_name("wh_1", "b1")
        assert await a.claim(time.time(), 10) == [q]
        assert await b.claim(time.time(), 10) == []  # node a holds it
        assert await b.head(q) == (first, 0)
        await a.retry(q, time.time())  # failed: due again at once, claim released
        assert await b.claim(time.time(), 10) == [q]
        assert await b.head(q) == (first, 1)
        await b.delivered(q, first.id)
        assert await a.claim(time.time(), 10) == [q]
        assert await a.head(q) == (second, 0)  # the next of the broadcast, never before the first
        await a.delivered(q, second.id)
        assert await a.head(q) is None and await client.zcard(P + "due") == 0
        # a node that dies holding a claim lets another take over once the claim expires
        await a.enqueue(["wh_1"], first)
        assert await a.claim(time.time(), 10) == [q]
        assert await b.claim(time.time(), 10) == []
        await asyncio.sleep(0.6)
        assert await b.claim(time.time(), 10) == [q]
        # bounded
        await client.delete(P + "q:" + q)
        await client.rpush(P + "q:" + q, *[first.to_json()] * MAX_PENDING)
        assert await a.enqueue(["wh_1"], second) == ["wh_1"]
        assert await client.llen(P + "q:" + q) == MAX_PENDING
    finally:
        await client.aclose()
