"""The pure parts of identities and quotas: tokens, name folding, address networks, buckets."""

from __future__ import annotations

import time

import pytest

from broadcaster.chat import protocol as proto
from broadcaster.chat.identity import IdentityRefused, identify
from broadcaster.chat.names import fold
from broadcaster.chat.quotas import AddressLimits, ChatQuotas, QuotaExceeded, address_key, network_of
from broadcaster.chat.relay import ChatSettings
from broadcaster.chat.tokens import TokenError, issue, issue_anonymous, verify, verify_any

SECRET = b"s" * 32


def test_named_and_anonymous_tokens_cannot_pass_for_each_other() -> None:
    named = issue(SECRET, "b1", "v_1", "Vera", role="moderator")
    anon = issue_anonymous(SECRET, "b1", "a_1")
    assert verify(SECRET, named, "b1").role == "moderator"
    assert verify_any(SECRET, anon, "b1").anonymous and verify_any(SECRET, anon, "b1").name == ""
    with pytest.raises(TokenError, match="malformed"):
        verify(SECRET, anon, "b1")  # where a named identity is required, an anonymous one is not taken
    swapped = "vt1." + anon.split(".", 1)[1]  # same payload and signature under the other prefix
    with pytest.raises(TokenError, match="signature is invalid"):
        verify_any(SECRET, swapped, "b1")
    with pytest.raises(ValueError, match="unknown role"):
        issue(SECRET, "b1", "v_2", "x", role="admin")


def test_identify() -> None:
    fresh = identify(SECRET, proto.Hello("ann", None, None), "b1", restricted=False, now=1000.0)
    assert fresh.viewer_id.startswith("a_") and fresh.name == "ann" and fresh.role == "viewer"
    again = identify(SECRET, proto.Hello(None, fresh.token, None), "b1", restricted=False, now=2000.0)
    assert (again.viewer_id, again.name) == (fresh.viewer_id, "guest") and again.token != fresh.token
    host = identify(SECRET, proto.Hello("ignored", issue(SECRET, "b1", "console_host", "host", role="host"), None),
                    "b1", restricted=True)
    assert (host.name, host.role, host.verified_role, host.token) == ("host", "host", True, None)
    for hello, restricted in ((proto.Hello("x", None, None), True), (proto.Hello("x", fresh.token, None), True),
                              (proto.Hello("x", fresh.token[:-2] + "xx", None), False)):
        with pytest.raises(IdentityRefused) as info:
            identify(SECRET, hello, "b1", restricted=restricted)
        assert (info.value.code, info.value.close_code) == ("unauthorized", 4001)
    with pytest.raises(IdentityRefused, match="expired"):
        identify(SECRET, proto.Hello("x", fresh.token, None), "b1", False, now=time.time() + 40 * 24 * 3600)


@pytest.mark.parametrize("name, folded", [
    ("Host", "host"), ("H0ST", "host"), ("Ｈｏｓｔ", "host"), ("h.o.s.t", "host"), ("Нost", "host"),
    ("hoooost", "host"), ("h o s t 🎤", "host"), ("ghost", "ghost"), ("Modesto", "modesto"), ("🎤🎤", ""),
])
def test_names_fold_against_look_alikes(name: str, folded: str) -> None:
    assert fold(name) == folded


@pytest.mark.parametrize("address, network", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # one subscriber's /64: one unit
    ("::ffff:198.51.100.9", "198.51.100.9"),
    ("fe80::1%eth0", "fe80::/64"),
    ("", ""),
])
def test_network_of(address: str, network: str) -> None:
    assert network_of(address) == network


def test_address_key_is_keyed_per_broadcast_and_per_network() -> None:
    key = address_key(SECRET, "b1", "2001:db8::1")
    assert key == address_key(SECRET, "b1", "2001:db8::2")  # the same /64
    assert key != address_key(SECRET, "b2", "2001:db8::1")  # another broadcast's host cannot correlate
    assert key != address_key(b"t" * 32, "b1", "2001:db8::1")
    assert "2001" not in key and len(key) == 32


def test_quotas_per_address_and_per_identity() -> None:
    now = [0.0]
    quotas = ChatQuotas(AddressLimits(max_sockets=2, join_rate=1, join_burst=3, comment_rate=1, comment_burst=2),
                        ChatSettings(comment_rate=0.001, comment_burst=5), clock=lambda: now[0])
    a1, a2 = quotas.connect("10.0.0.1"), quotas.connect("10.0.0.1")
    with pytest.raises(QuotaExceeded) as info:
        quotas.connect("10.0.0.1")
    assert info.value.code == "too_many_sockets"
    other = quotas.connect("10.0.0.2")  # another address has its own
    quotas.disconnect(a2)
    a3 = quotas.connect("10.0.0.1")  # a freed place; the 3rd join of the burst
    quotas.disconnect(a3)
    with pytest.raises(QuotaExceeded) as info:
        quotas.connect("10.0.0.1")
    assert info.value.code == "too_many_joins"
    # two identities from one address share its comments; one identity keeps its bucket across sockets
    held1, ann = quotas.join("b", "ann", a1)
    held2, bob = quotas.join("b", "bob", a1)
    assert ann.comments.take() and bob.comments.take()
    assert not ann.comments.take()  # the address's burst (2) is spent
    held3, ann_again = quotas.join("b", "ann", other)  # ann's second socket, from elsewhere
    assert ann_again.comments.take()  # ann's own bucket still has 3 of 5
    assert quotas.tracked == (2, 2)
    for held in (held1, held2, held3):
        quotas.leave(held)
    quotas.disconnect(a1)
    quotas.disconnect(other)
    now[0] = 10_000.0  # long unused: as good as new, so forgotten
    quotas.connect("10.0.0.3")
    quotas.join("b", "cy", None)
    assert quotas.tracked == (1, 1)
