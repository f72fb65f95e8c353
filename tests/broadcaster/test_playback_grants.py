"""Playback grants and object signatures (pure): genuine, tampered, expired, another broadcast's, revoked."""

from __future__ import annotations

import pytest

from broadcaster.chat.tokens import issue as issue_viewer_token
from broadcaster.chat.tokens import verify as verify_viewer_token
from broadcaster.playback.grants import (LIVE_BUCKET, NO_GRANT, VOD_BUCKET, AccessState, GrantReader, ObjectSigner,
                                         Refused, admit, authorize_object, authorize_playlist, grant_key, issue_grant,
                                         read_grant, signature_expiry)
from broadcaster.signing import TokenError

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
NOW = 1_800_000_000.0
KEY = grant_key(SECRET)
READER = GrantReader(KEY)


def grant(broadcast: str = "b1", viewer: str = "v_1", epoch: int = 0, expires: float = NOW + 3600) -> str:
    return issue_grant(SECRET, broadcast, viewer, epoch, expires)


def tamper(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def test_a_genuine_grant_reads_back():
    read = read_grant(KEY, grant(), "b1", NOW)
    assert (read.broadcast_id, read.viewer_id, read.epoch, read.expires) == ("b1", "v_1", 0, NOW + 3600)


@pytest.mark.parametrize("where", ["payload", "signature", "prefix"])
def test_a_tampered_grant_is_refused(where: str):
    text = grant()
    prefix, payload, _ = text.split(".")
    at = {"prefix": 1, "payload": len(prefix) + 5, "signature": len(prefix) + len(payload) + 5}[where]
    with pytest.raises(Refused) as refused:
        read_grant(KEY, tamper(text, at), "b1", NOW)
    assert refused.value.status == 403 and not refused.value.issued_for_it
    assert refused.value.reason in ("playback grant signature is invalid", "playback grant is malformed")


@pytest.mark.parametrize("text", ["", "pg1", "pg1..", "pg1.e30.", "vt1.a.b", "x" * 5000, "pg1.%%%.abc"])
def test_a_malformed_grant_is_refused(text: str):
    with pytest.raises(Refused) as refused:
        read_grant(KEY, text, "b1", NOW)
    assert refused.value.status == 403


def test_a_grant_signed_with_another_secret_is_refused():
    forged = issue_grant(OTHER_SECRET, "b1", "v_1", 0, NOW + 3600)
    with pytest.raises(Refused, match="signature is invalid"):
        read_grant(KEY, forged, "b1", NOW)


def test_a_viewer_token_is_not_a_grant_and_a_grant_is_not_a_viewer_token():
    token = issue_viewer_token(SECRET, "b1", "v_1", "Ann", now=NOW)
    with pytest.raises(Refused):
        read_grant(KEY, token, "b1", NOW)
    # the same payload under the grant prefix still fails: the keys differ by purpose
    with pytest.raises(Refused, match="signature is invalid"):
        read_grant(KEY, "pg1." + token.split(".", 1)[1], "b1", NOW)
    with pytest.raises(TokenError):
        verify_viewer_token(SECRET, grant(), "b1", now=NOW)


def test_another_broadcasts_grant_is_refused():
    with pytest.raises(Refused, match="for another broadcast") as refused:
        read_grant(KEY, grant("b2"), "b1", NOW)
    assert not refused.value.issued_for_it


def test_an_expired_grant_is_refused():
    with pytest.raises(Refused, match="has expired") as refused:
        read_grant(KEY, grant(expires=NOW - 1), "b1", NOW)
    assert refused.value.issued_for_it


def test_epoch_and_bans():
    state = AccessState(gated=True, epoch=2, banned=frozenset({"v_bad"}))
    admit(state, "v_1", 2)
    with pytest.raises(Refused, match="was revoked"):
        admit(state, "v_1", 1)
    with pytest.raises(Refused, match="banned"):
        admit(state, "v_bad", 2)
    query = {"grant": grant(epoch=1)}
    with pytest.raises(Refused, match="was revoked"):
        authorize_playlist(READER, state, "b1", query, NOW)
    assert authorize_playlist(READER, state, "b1", {"grant": grant(epoch=2)}, NOW).viewer_id == "v_1"


def test_no_grant_is_a_401():
    state = AccessState(gated=True)
    for query in ({}, {"grant": ""}):
        with pytest.raises(Refused) as refused:
            authorize_playlist(READER, state, "b1", query, NOW)
        assert refused.value is NO_GRANT and refused.value.status == 401


def test_object_signatures():
    signer = ObjectSigner(SECRET, "b1", 0)
    expires = signature_expiry(NOW, vod=False)
    value = signer.sign("source/s3.p1.m4s", expires)
    signer.check("source/s3.p1.m4s", value, NOW)
    # every viewer signed within a bucket gets the same URL; it stays valid at least one bucket
    assert signer.sign("source/s3.p1.m4s", signature_expiry(NOW + 1, vod=False)) == value or \
        int(NOW + 1) // LIVE_BUCKET != int(NOW) // LIVE_BUCKET
    assert LIVE_BUCKET <= expires - NOW <= 2 * LIVE_BUCKET
    assert VOD_BUCKET <= signature_expiry(NOW, vod=True) - NOW <= 2 * VOD_BUCKET
    refusals = {
        "another object": lambda: signer.check("source/s3.p2.m4s", value, NOW),
        "another broadcast": lambda: ObjectSigner(SECRET, "b2", 0).check("source/s3.p1.m4s", value, NOW),
        "another epoch": lambda: ObjectSigner(SECRET, "b1", 1).check("source/s3.p1.m4s", value, NOW),
        "tampered mac": lambda: signer.check("source/s3.p1.m4s", tamper(value, len(value) - 3), NOW),
        "later expiry": lambda: signer.check("source/s3.p1.m4s", f"{expires + 60}.{value.split('.')[1]}", NOW),
        "expired": lambda: signer.check("source/s3.p1.m4s", value, expires + 1),
        "malformed": lambda: signer.check("source/s3.p1.m4s", "nonsense", NOW),
    }
    for name, attempt in refusals.items():
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.status == 403, name


def test_objects_take_a_signature_or_else_a_grant():
    state = AccessState(gated=True, epoch=0)
    signer = ObjectSigner(SECRET, "b1", 0)
    value = signer.sign("audio/init0.mp4", signature_expiry(NOW, vod=False))
    assert authorize_object(READER, signer, state, "b1", "audio/init0.mp4", {"s": value}, NOW) is None
    assert authorize_object(READER, signer, state, "b1", "audio/init0.mp4", {"grant": grant()}, NOW).viewer_id == "v_1"
    with pytest.raises(Refused) as refused:
        authorize_object(READER, signer, state, "b1", "audio/init0.mp4", {}, NOW)
    assert refused.value.status == 401
    # a bad signature is not rescued by a good grant: the signature is what was asked to be checked
    with pytest.raises(Refused):
        authorize_object(READER, signer, state, "b1", "audio/init0.mp4", {"s": "1.x", "grant": grant()}, NOW)


def test_the_reader_remembers_genuine_grants_only_and_checks_the_rest_every_time():
    reader = GrantReader(KEY, max_entries=3)
    text = grant(expires=NOW + 10)
    assert reader.open(text) is reader.open(text)
    state = AccessState(gated=True)
    assert authorize_playlist(reader, state, "b1", {"grant": text}, NOW).viewer_id == "v_1"
    with pytest.raises(Refused, match="has expired"):
        authorize_playlist(reader, state, "b1", {"grant": text}, NOW + 11)
    with pytest.raises(Refused, match="banned"):
        authorize_playlist(reader, AccessState(gated=True, banned=frozenset({"v_1"})), "b1", {"grant": text}, NOW)
    for _ in range(3):
        with pytest.raises(Refused):
            reader.open(tamper(text, len(text) - 4))
    assert len(reader._opened) == 1
    for n in range(10):
        reader.open(grant(viewer=f"v_{n}"))
    assert len(reader._opened) <= 3
