"""Pure parts of the WHIP edge: offer checks, H.264 shapes, ICE server URLs and host restriction, track clocks."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ingest.whip.errors import OfferError
from ingest.whip.h264 import access_unit_to_avcc, avc_decoder_config, config_from_extradata, split_annexb
from ingest.whip.ice import IceServer, restrict_host_addresses, validate_hosts
from ingest.whip.offer import check_offer
from ingest.whip.timing import TrackClock
from tests.support.whip import make_offer

VIDEO = ("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"
         "a=rtpmap:97 rtx/90000\r\n")
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
# what ICE and DTLS need, once for every section
TRANSPORT = ("a=ice-ufrag:Xk2p\r\na=ice-pwd:c2VjcmV0c2VjcmV0c2VjcmV0\r\na=setup:actpass\r\n"
             "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n")


def test_offer_with_video_and_audio_is_accepted() -> None:
    summary = check_offer(HEAD + TRANSPORT + VIDEO + AUDIO)
    assert summary.video_codec == "VP8"
    assert summary.audio_codec == "opus"


@pytest.mark.parametrize("text, reason", [
    ("", "invalid SDP offer: it must start with 'v=0'"),
    ("hello world", "invalid SDP offer: it must start with 'v=0'"),
    ("v=0\r\nthis is not sdp\r\n", "invalid SDP offer: line 2 is not '<type>=<value>'"),
    (HEAD, "SDP offer has no audio or video section"),
    (HEAD + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "SDP offer has no audio or video section"),
    (HEAD + AUDIO, "SDP offer has no video section: a broadcast needs video"),
    (HEAD + VIDEO + VIDEO, "SDP offer has more than one video or audio section: send one of each"),
    (HEAD + VIDEO.replace("sendonly", "recvonly"), "SDP offer's video section is recvonly: WHIP needs sendonly"),
    (HEAD + "m=video 9\r\n", "invalid SDP offer: malformed media line 'm=video 9'"),
    (HEAD + VIDEO.replace("VP8", "AV1"),
     "no supported video codec in the offer (offered: AV1, rtx; supported: H264, VP8)"),
    (HEAD + VIDEO + AUDIO.replace("opus", "G722"),
     "no supported audio codec in the offer (offered: G722; supported: opus)"),
    (HEAD + VIDEO + AUDIO, "invalid SDP offer: the video section has no ICE credentials (a=ice-ufrag, a=ice-pwd)"),
    (HEAD + TRANSPORT.replace("a=setup:actpass\r\n", "") + VIDEO,
     "invalid SDP offer: the video section has no DTLS fingerprint and role (a=fingerprint, a=setup)"),
    (HEAD + TRANSPORT + VIDEO.replace("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8"),
     "invalid SDP offer: aiortc cannot parse it (list index out of range)"),
    (HEAD + TRANSPORT + VIDEO.replace("96 97", "96 300"),
     "invalid SDP offer: aiortc cannot parse it (AssertionError)"),
])
def test_bad_offers_have_exact_reasons(text: str, reason: str) -> None:
    with pytest.raises(OfferError) as info:
        check_offer(text)
    assert info.value.reason == reason
    assert info.value.status == 400


SPS = bytes.fromhex("6764001facd9405005bb011000000300100000030320f1831960")
PPS = bytes.fromhex("68ebe3cb22c0")


def test_annexb_to_avcc_and_config_record() -> None:
    idr = bytes.fromhex("658884") + b"\x01" * 20
    stream = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + idr
    assert split_annexb(stream) == [b"\x09\xf0", SPS, PPS, idr]
    avcc = access_unit_to_avcc(stream)  # the access unit delimiter is dropped
    assert avcc == (len(SPS).to_bytes(4, "big") + SPS + len(PPS).to_bytes(4, "big") + PPS
                    + len(idr).to_bytes(4, "big") + idr)
    record = config_from_extradata(b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS)
    assert record == avc_decoder_config(SPS, PPS)
    assert record[:6] == bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE1])
    assert record[6:8] == len(SPS).to_bytes(2, "big") and record[8:8 + len(SPS)] == SPS
    assert record[8 + len(SPS)] == 1 and record[-len(PPS):] == PPS
    assert config_from_extradata(record) == record
    with pytest.raises(ValueError, match="no Annex B start code in H.264 data"):
        split_annexb(b"\x67\x64")
    with pytest.raises(ValueError, match="encoder extradata has no SPS/PPS"):
        config_from_extradata(b"\x00\x00\x01" + SPS)


def test_ice_server_urls_and_link_headers() -> None:
    stun = IceServer.parse("stun:stun.example.net:3478")
    assert stun.link_header() == '<stun:stun.example.net:3478>; rel="ice-server"'
    turn = IceServer.parse("turn:alice:s3cr@t@turn.example.net:3478?transport=udp")
    assert (turn.url, turn.username, turn.credential) == ("turn:turn.example.net:3478?transport=udp", "alice", "s3cr@t")
    assert turn.link_header() == ('<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="alice"; '
                                  'credential="s3cr%40t"; credential-type="password"')
    for bad, message in [("http://x", "expected stun:, stuns:, turn: or turns: URL"),
                         ("turn:turn.example.net", "TURN needs user:password@host"),
                         ("stun:", "expected stun:, stuns:, turn: or turns: URL")]:
        with pytest.raises(ValueError, match=message):
            IceServer.parse(bad)
    assert validate_hosts(("127.0.0.1", "::1")) == ("127.0.0.1", "::1")
    with pytest.raises(ValueError, match="ICE host 'localhost' is not an IP address"):
        validate_hosts(("localhost",))


async def test_host_restriction_applies_only_inside_the_block() -> None:
    default = aioice.ice.get_host_addresses(True, True)
    assert "127.0.0.1" not in default  # aioice's own behaviour, the reason for the option

    async def gather() -> list[str]:
        connection = aioice.Connection(ice_controlling=False)
        await connection.gather_candidates()
        hosts = [c.host for c in connection.local_candidates]
        await connection.close()
        return hosts

    with restrict_host_addresses(("127.0.0.1",)):
        assert await gather() == ["127.0.0.1"]
        # a task created inside inherits the restriction
        assert await asyncio.create_task(gather()) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(False, True) == []
    assert aioice.ice.get_host_addresses(True, True) == default


def test_track_clock_follows_rtp_time_and_shows_gaps() -> None:
    clock = TrackClock(session_start=100.0)
    tb = Fraction(1, 90000)
    # first frame arrives 0.5 s into the session: that is where the track starts
    assert clock.to_ms(0, tb, arrival=100.5) == 500
    # frames arriving late and in a burst keep their RTP spacing (no fast-forward)
    assert clock.to_ms(3000, tb, arrival=103.0) == 533
    assert clock.to_ms(6000, tb, arrival=103.0) == 567
    # a stall of 2 s in RTP time is a 2 s gap
    assert clock.to_ms(6000 + 180000, tb, arrival=105.0) == 2567


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SDP_LINES = st.sampled_from(["v=0", "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                             "a=rtpmap:96 H264/90000", "a=rtpmap:111 opus/48000/2", "a=sendonly", "a=recvonly",
                             "m=video", "a=rtpmap:", "a=rtpmap:96", "m=application 9 x", "o=- 1 1 IN IP4 0"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(st.one_of(SDP_LINES, st.text(max_size=20)), max_size=12)
                 .map(lambda lines: "\r\n".join(lines))))
def test_offer_checks_never_fail_other_than_with_offer_error(text: str) -> None:
    try:
        summary = check_offer(text)
    except OfferError as exc:
        assert exc.status == 400 and exc.reason
    else:
        assert summary.video_codec in ("H264", "VP8")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_annexb_helpers_raise_only_value_error(data: bytes) -> None:
    for helper in (split_annexb, config_from_extradata, access_unit_to_avcc):
        try:
            helper(data)
        except ValueError:
            pass


async def test_every_truncation_of_a_real_offer_is_a_400_or_negotiates() -> None:
    # what a short body read used to hand aiortc: some cuts raised AttributeError/AssertionError (500s)
    offer = await make_offer()
    refused = 0
    for cut in range(1, len(offer) + 1, 5):
        try:
            check_offer(offer[:cut])
        except OfferError as exc:
            assert exc.status == 400
            refused += 1
            continue
        answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            with restrict_host_addresses(("127.0.0.1",)):  # no test traffic leaves loopback
                await answerer.setRemoteDescription(RTCSessionDescription(sdp=offer[:cut], type="offer"))
                await answerer.setLocalDescription(await answerer.createAnswer())
        finally:
            await answerer.close()
    assert refused > len(offer) // 10
