"""LL-HLS on the origin: blocking playlist reload and preload-hinted parts, over real HTTP.

The test plays the pipeline: it writes the rendition's files and playlist into
the node's data dir, then publishes the playlist's position on the node's
PlaylistWatch, in that order, as ingest/pipeline.py does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.keys import PLAYLIST_WATCH
from ingest.hls.store import part_uri
from ingest.hls.watch import PlaylistPosition, PlaylistWatch
from tests.support.registry import register

BROADCAST = "ll1"
PARTS_PER_SEGMENT = 4


@dataclass
class Packager:
    """Writes one rendition of an LL broadcast the way the pipeline lays it out, then publishes."""

    root: Path
    watch: PlaylistWatch
    rendition: str = "source"
    part_target: float = 0.5
    target_duration: float = 2.0

    def publish(self, last_msn: int, building_parts: int, ended: bool = False) -> PlaylistPosition:
        """Segments 10..last_msn complete, ``building_parts`` parts of segment last_msn + 1 listed."""
        folder = self.root / self.rendition
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["#EXTM3U", "#EXT-X-VERSION:9", f"#EXT-X-TARGETDURATION:{self.target_duration:g}",
                 f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * self.part_target:.3f}",
                 f"#EXT-X-PART-INF:PART-TARGET={self.part_target:.3f}", "#EXT-X-MEDIA-SEQUENCE:10",
                 '#EXT-X-MAP:URI="init0.mp4"']

        def part(msn: int, index: int) -> None:
            (folder / part_uri(msn, index)).write_bytes(f"part {msn}.{index}".encode())
            lines.append(f'#EXT-X-PART:DURATION={self.part_target:.3f},URI="{part_uri(msn, index)}"')

        for msn in range(10, last_msn + 1):
            for index in range(PARTS_PER_SEGMENT):
                part(msn, index)
            (folder / f"s{msn}.m4s").write_bytes(f"segment {msn}".encode())
            lines += [f"#EXTINF:{self.target_duration:.3f},", f"s{msn}.m4s"]
        for index in range(building_parts):
            part(last_msn + 1, index)
        if building_parts:
            part_msn, last_part = last_msn + 1, building_parts - 1
        else:
            part_msn, last_part = last_msn, PARTS_PER_SEGMENT - 1
        hint = None
        if ended:
            lines.append("#EXT-X-ENDLIST")
        else:
            hint = part_uri(last_msn + 1, building_parts)
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
        (folder / "index.m3u8").write_text("\n".join(lines) + "\n")
        position = PlaylistPosition(last_msn=last_msn, part_msn=part_msn, last_part=last_part,
                                    part_target=self.part_target, target_duration=self.target_duration,
                                    hint_uri=hint, ended=ended)
        self.watch.publish(BROADCAST, self.rendition, position)
        return position


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path):
    (tmp_path / "onair.db.secret").write_text("top secret")
    root = tmp_path / "hls" / BROADCAST
    root.mkdir(parents=True)
    (root / "master.m3u8").write_text("#EXTM3U\n")
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="t" * 20)
    client = await aiohttp_client(create_app(config))
    await register(client.app, BROADCAST)
    return client


@pytest.fixture
def watch(client) -> PlaylistWatch:
    return client.app[PLAYLIST_WATCH]


@pytest.fixture
def source(client, watch, tmp_path: Path) -> Packager:
    return Packager(tmp_path / "hls" / BROADCAST, watch)


async def held(watch: PlaylistWatch, *requests: asyncio.Future, rendition: str = "source") -> None:
    """Until ``requests`` are all held waiting for the rendition's next publish; fails if one is answered."""
    while watch.waiting(BROADCAST, rendition) < len(requests):
        answered = [r for r in requests if r.done()]
        if answered:
            resp = answered[0].result()
            raise AssertionError(f"answered instead of held: {resp.status} {await resp.text()!r}")
        await asyncio.sleep(0.001)


def reload(client, msn: int | str, part: int | str | None = None, rendition: str = "source"):
    params = {"_HLS_msn": str(msn)}
    if part is not None:
        params["_HLS_part"] = str(part)
    return asyncio.ensure_future(client.get(f"/hls/{BROADCAST}/{rendition}/index.m3u8", params=params))


async def test_a_reload_for_a_part_not_yet_listed_is_held_until_it_is(client, watch, source):
    source.publish(last_msn=11, building_parts=1)
    request = reload(client, 12, 1)
    await held(watch, request)
    assert not request.done()
    # a publish that does not reach part 1 leaves it held: it goes back to waiting
    source.publish(last_msn=11, building_parts=1)
    assert watch.waiting(BROADCAST, "source") == 0
    await held(watch, request)
    assert not request.done()
    source.publish(last_msn=11, building_parts=2)
    resp = await request
    assert resp.status == 200
    body = await resp.text()
    assert 'URI="s12.p1.m4s"' in body
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s12.p2.m4s"' in body
    # the answer to this query stays right: a cache keeps it under the full query, as long as the origin would hold it
    assert resp.headers["Cache-Control"] == "public, max-age=6"
    assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_reload_already_satisfied_is_answered_at_once(client, source):
    source.publish(last_msn=11, building_parts=1)
    for msn, part in ((11, None), (12, 0), (11, 9), (3, None)):
        resp = await reload(client, msn, part)
        assert resp.status == 200
        assert 'URI="s12.p0.m4s"' in await resp.text()


async def test_a_part_past_the_end_of_a_complete_segment_waits_for_the_next_segment(client, watch, source):
    source.publish(last_msn=12, building_parts=0)  # segment 12 just completed with parts 0..3
    request = reload(client, 12, 4)
    await held(watch, request)
    assert not request.done()
    source.publish(last_msn=12, building_parts=1)
    resp = await request
    assert resp.status == 200
    assert 'URI="s13.p0.m4s"' in await resp.text()


@pytest.mark.parametrize("query, message", [
    ({"_HLS_msn": "20"}, "_HLS_msn=20 is more than 2 segments past the playlist's last segment (12)"),
    ({"_HLS_msn": "12", "_HLS_part": "9"},
     "_HLS_msn=12&_HLS_part=9 is 9 parts past the playlist's last part (segment 12 part 0); the limit is 6"),
    ({"_HLS_part": "1"}, "_HLS_part requires _HLS_msn"),
    ({"_HLS_msn": "-1"}, "_HLS_msn must be a decimal integer from 0 to 2^64-1, not '-1'"),
    ({"_HLS_msn": "12", "_HLS_part": "one"}, "_HLS_part must be a decimal integer from 0 to 2^64-1, not 'one'"),
])
async def test_bad_or_too_far_ahead_requests_are_400(client, watch, source, query, message):
    source.publish(last_msn=11, building_parts=1)
    resp = await client.get(f"/hls/{BROADCAST}/source/index.m3u8", params=query)
    assert resp.status == 400
    assert await resp.json() == {"error": message}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert watch.waiting(BROADCAST, "source") == 0


async def test_other_requests_are_answered_while_one_is_held(client, watch, source, tmp_path):
    other = Packager(source.root, watch, rendition="720p")
    other.publish(last_msn=11, building_parts=1)
    source.publish(last_msn=11, building_parts=1)
    blocked_reload = reload(client, 12, 1)
    blocked_part = asyncio.ensure_future(client.get(f"/hls/{BROADCAST}/source/s12.p1.m4s"))
    await held(watch, blocked_reload, blocked_part)
    for path, expected in ((f"/hls/{BROADCAST}/master.m3u8", "#EXTM3U"),
                           (f"/hls/{BROADCAST}/720p/index.m3u8", 'URI="s12.p0.m4s"'),
                           (f"/hls/{BROADCAST}/source/index.m3u8", 'URI="s12.p0.m4s"'),
                           (f"/hls/{BROADCAST}/source/s11.m4s", "segment 11"),
                           (f"/hls/{BROADCAST}/source/s12.p0.m4s", "part 12.0")):
        resp = await client.get(path)
        assert resp.status == 200
        assert expected in await resp.text()
    # a blocking reload of another rendition is held and released on its own
    other_reload = reload(client, 12, 1, rendition="720p")
    await held(watch, other_reload, rendition="720p")
    other.publish(last_msn=11, building_parts=2)
    assert (await other_reload).status == 200
    assert not blocked_reload.done() and not blocked_part.done()
    source.publish(last_msn=11, building_parts=2)
    assert (await blocked_reload).status == 200
    resp = await blocked_part
    assert resp.status == 200 and await resp.read() == b"part 12.1"


async def test_a_reload_not_satisfied_within_three_target_durations_is_503(client, watch, source):
    source.part_target, source.target_duration = 0.01, 0.03
    source.publish(last_msn=11, building_parts=1)
    resp = await reload(client, 13)
    assert resp.status == 503
    assert (await resp.json())["error"] == ("the playlist did not reach the requested position within 0.09 s "
                                            "(three target durations)")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert watch.waiting(BROADCAST, "source") == 0


async def test_the_hinted_part_is_held_until_it_is_written(client, watch, source):
    source.publish(last_msn=11, building_parts=1)
    request = asyncio.ensure_future(client.get(f"/hls/{BROADCAST}/source/s12.p1.m4s"))
    await held(watch, request)
    assert not request.done()
    source.publish(last_msn=11, building_parts=2)
    resp = await request
    assert resp.status == 200
    assert await resp.read() == b"part 12.1"
    assert resp.headers["Content-Type"] == "video/iso.segment"
    assert "immutable" in resp.headers["Cache-Control"]


async def test_a_missing_part_that_is_not_about_to_be_written_is_404_at_once(client, watch, source):
    source.publish(last_msn=11, building_parts=1)
    for name in ("s12.p2.m4s", "s14.p0.m4s", "s13.m4s"):
        resp = await client.get(f"/hls/{BROADCAST}/source/{name}")
        assert resp.status == 404
    assert watch.waiting(BROADCAST, "source") == 0


async def test_a_hinted_part_that_is_dropped_or_late_is_404(client, watch, source):
    source.publish(last_msn=11, building_parts=1)
    request = asyncio.ensure_future(client.get(f"/hls/{BROADCAST}/source/s12.p1.m4s"))
    await held(watch, request)
    # segment 12 ends after part 0 ("early return"): the hint moves on without s12.p1.m4s
    watch.publish(BROADCAST, "source", PlaylistPosition(last_msn=12, part_msn=12, last_part=0, part_target=0.5,
                                                        target_duration=2.0, hint_uri="s13.p0.m4s"))
    assert (await request).status == 404
    # a hint never written within three target durations
    source.part_target, source.target_duration = 0.01, 0.03
    source.publish(last_msn=11, building_parts=1)
    resp = await client.get(f"/hls/{BROADCAST}/source/s12.p1.m4s")
    assert resp.status == 404
    assert "0.09 s" in (await resp.json())["error"]


async def test_an_ended_or_unpublished_playlist_answers_directives_at_once(client, watch, source):
    source.publish(last_msn=13, building_parts=0, ended=True)
    resp = await reload(client, 99, 0)
    assert resp.status == 200
    assert "#EXT-X-ENDLIST" in await resp.text()
    assert resp.headers["Cache-Control"] == "public, max-age=3600"
    # the node does not know this playlist (e.g. it was restarted): the file as it is
    watch.forget(BROADCAST)
    resp = await reload(client, 99)
    assert resp.status == 200
    resp = await reload(client, 1, rendition="480p")
    assert resp.status == 404


async def test_a_held_reload_is_answered_when_the_broadcast_goes_away(client, watch, source):
    source.publish(last_msn=11, building_parts=1)
    request = reload(client, 13)
    await held(watch, request)
    watch.forget(BROADCAST)
    resp = await request
    assert resp.status == 200
    assert 'URI="s12.p0.m4s"' in await resp.text()


@pytest.mark.parametrize("path", [
    f"/hls/{BROADCAST}/..%2f..%2fonair.db.secret?_HLS_msn=1",
    f"/hls/{BROADCAST}/source/..%2f..%2f..%2fonair.db.secret?_HLS_msn=12&_HLS_part=1",
    f"/hls/{BROADCAST}/source/../../../onair.db.secret?_HLS_msn=12",
    "/hls/..%2f/source/index.m3u8?_HLS_msn=12",
    f"/hls/{BROADCAST}/source/..%2f..%2f..%2fs12.p1.m4s",
    f"/hls/{BROADCAST}/source/%2e%2e/%2e%2e/%2e%2e/onair.db.secret?_HLS_msn=12",
])
async def test_traversal_is_refused_with_directives_too(client, watch, source, path):
    source.publish(last_msn=11, building_parts=1)
    resp = await client.get(path)
    assert resp.status == 404
    assert "secret" not in await resp.text()
    assert watch.waiting(BROADCAST, "source") == 0
