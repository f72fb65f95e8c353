"""Publish over RTMP with real clients into a real node; read the HLS back."""

from __future__ import annotations

import time

import m3u8
import pytest

from tests.support.hls import fetch, init_url, load_media_playlists, probe_segment
from tests.support.publish import PyAVPublisher, ffmpeg_publish

pytestmark = pytest.mark.e2e


def check_vod(node, broadcast_id: str, ffprobe: str, sent_seconds: float, *, expect_discontinuity: bool = False):
    """Every rendition: ENDLIST, segments readable, durations honest.

    MPEG-TS: video + audio in every segment.  LL-HLS: fMP4 video renditions and
    one audio rendition shared by all variants (``#EXT-X-MEDIA``).
    """
    master_url = f"{node.base}/hls/{broadcast_id}/master.m3u8"
    master = m3u8.loads(fetch(master_url).decode(), uri=master_url)
    assert len(master.playlists) >= 2, "expected the passthrough rendition and a transcoded one"
    separate_audio = [media for media in master.media if media.type == "AUDIO"]
    for variant in master.playlists:
        assert variant.stream_info.bandwidth > 0
        assert variant.stream_info.resolution is not None
        assert "avc1." in variant.stream_info.codecs and "mp4a.40.2" in variant.stream_info.codecs
        if separate_audio:
            assert variant.stream_info.audio == separate_audio[0].group_id
    audio_urls = {media.absolute_uri for media in separate_audio}
    for url, playlist in load_media_playlists(master_url, with_audio=True).items():
        assert playlist.is_endlist, f"{url} has no #EXT-X-ENDLIST"
        assert playlist.segments, f"{url} has no segments"
        expected = {"audio"} if url in audio_urls else {"video"} if separate_audio else {"video", "audio"}
        total = 0.0
        for segment in playlist.segments:
            probe = probe_segment(ffprobe, segment.absolute_uri, init_url(segment))
            assert probe.streams == expected, segment.uri
            if "video" in expected:
                assert probe.first_video_is_key, f"{segment.uri} does not start with a keyframe"
            assert abs(probe.duration - segment.duration) <= 0.1, (segment.uri, probe.duration, segment.duration)
            total += segment.duration
        assert abs(total - sent_seconds) <= 0.1 * len(playlist.segments), (url, total, sent_seconds)
        has_discontinuity = any(s.discontinuity for s in playlist.segments)
        assert has_discontinuity == expect_discontinuity, url


@pytest.mark.parametrize("variant", ["lowlatency", "mpegts"])
def test_ffmpeg_publish_goes_live_reconnecting_ended_with_a_replay(node_factory, ffprobe, variant):
    node = node_factory(hls_variant=variant)
    doc = node.create_broadcast("ffmpeg")
    assert doc["status"] == "idle"
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=6)
    node.wait_status(doc["id"], "live", timeout=15)
    live = node.wait_media(doc["id"], audio=True)
    assert live["live"]["video_codec"] == "h264" and live["live"]["audio_codec"] == "aac"
    assert publisher.wait(timeout=30) == 0, publisher.stderr.read().decode()
    node.wait_status(doc["id"], "reconnecting", timeout=10)
    node.wait_status(doc["id"], "ended", timeout=30)
    check_vod(node, doc["id"], ffprobe, sent_seconds=6.0)


def test_pyav_publish_produces_playable_hls(node, ffprobe):
    doc = node.create_broadcast("pyav")
    publisher = PyAVPublisher(node.rtmp_url(doc["stream_key"]), seconds=5)
    publisher.start()
    node.wait_status(doc["id"], "live", timeout=15)
    status = node.wait_media(doc["id"])
    assert status["live"]["width"] == 640 and status["live"]["height"] == 360
    publisher.join(timeout=30)
    assert publisher.error is None, publisher.error
    node.wait_status(doc["id"], "reconnecting", timeout=10)
    assert node.request("POST", f"/api/broadcasts/{doc['id']}/end")[0] == 200
    assert node.broadcast(doc["id"])["status"] == "ended"
    check_vod(node, doc["id"], ffprobe, sent_seconds=5.0)


def test_publisher_that_returns_within_grace_continues_the_broadcast(node_factory, ffprobe):
    node = node_factory(reconnect_grace=15)
    doc = node.create_broadcast("reconnect")
    first = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=3)
    node.wait_status(doc["id"], "live", timeout=15)
    assert first.wait(timeout=30) == 0
    node.wait_status(doc["id"], "reconnecting", timeout=10)
    second = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=3)
    node.wait_status(doc["id"], "live", timeout=15)
    assert second.wait(timeout=30) == 0
    node.wait_status(doc["id"], "reconnecting", timeout=10)
    assert node.request("POST", f"/api/broadcasts/{doc['id']}/end")[0] == 200
    check_vod(node, doc["id"], ffprobe, sent_seconds=6.0, expect_discontinuity=True)
    # an ended broadcast refuses new publishes
    late = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=1)
    assert late.wait(timeout=30) != 0


def test_two_broadcasts_live_at_once(node, ffprobe):
    a = node.create_broadcast("a")
    b = node.create_broadcast("b")
    pa = ffmpeg_publish(node.rtmp_url(a["stream_key"]), seconds=5)
    pb = ffmpeg_publish(node.rtmp_url(b["stream_key"]), seconds=5, size="480x270")
    node.wait_status(a["id"], "live", timeout=15)
    node.wait_status(b["id"], "live", timeout=15)
    assert pa.wait(timeout=30) == 0 and pb.wait(timeout=30) == 0
    # both end before either replay is checked: checking one takes longer than the other's grace on a busy machine
    for doc in (a, b):
        node.wait_status(doc["id"], "reconnecting", timeout=10)
        assert node.request("POST", f"/api/broadcasts/{doc['id']}/end")[0] == 200
    for doc in (a, b):
        check_vod(node, doc["id"], ffprobe, sent_seconds=5.0)
    assert 'onair_publishes_total{protocol="rtmp"} 2.0' in node.metrics()


def test_wrong_key_and_second_publisher_are_refused(node):
    doc = node.create_broadcast("refusals")
    wrong = ffmpeg_publish(node.rtmp_url(doc["stream_key"][:-3] + "xyz"), seconds=2)
    assert wrong.wait(timeout=30) != 0
    first = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=6)
    node.wait_status(doc["id"], "live", timeout=15)
    second = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=2)
    assert second.wait(timeout=30) != 0
    assert first.wait(timeout=30) == 0
    metrics = node.metrics()
    assert 'onair_publish_refused_total{protocol="rtmp",reason="bad_key"} 1.0' in metrics
    assert 'onair_publish_refused_total{protocol="rtmp",reason="already_live"} 1.0' in metrics
    log = node.log()
    assert "unknown stream key" in log and doc["stream_key"] not in log


def test_live_playlist_slides_while_live(node_factory):
    node = node_factory(live_window=3)
    doc = node.create_broadcast("window")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=9)
    node.wait_status(doc["id"], "live", timeout=15)
    url = f"{node.base}/hls/{doc['id']}/source/index.m3u8"
    deadline = time.monotonic() + 30
    playlist = None
    while time.monotonic() < deadline:
        try:
            playlist = m3u8.loads(fetch(url).decode())
        except OSError:
            playlist = None
        if playlist is not None and playlist.media_sequence and playlist.media_sequence > 0:
            break
        time.sleep(0.3)
    assert playlist is not None and playlist.media_sequence > 0, "the live window never slid"
    # (with LL-HLS, m3u8 also models the parts of the segment being built as a segment without a URI)
    complete = [segment for segment in playlist.segments if segment.uri]
    assert len(complete) <= 3 and not playlist.is_endlist
    publisher.wait(timeout=30)
    # parts of segments that left the live window are deleted; the segments stay for the replay
    rendition_dir = node.data_dir / "hls" / doc["id"] / "source"
    newest = max(int(p.name[1:-4]) for p in rendition_dir.glob("s*.m4s") if ".p" not in p.name)
    assert newest >= 4 and (rendition_dir / "s0.m4s").is_file()
    assert not list(rendition_dir.glob("s0.p*.m4s")), "parts of a segment out of the window were kept"
    assert list(rendition_dir.glob(f"s{newest}.p*.m4s")), "parts of the newest segment are gone"
