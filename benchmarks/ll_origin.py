"""Hold-to-answer delay of the LL-HLS origin: from a playlist publish to the held responses received.

The origin alone, no transcoder: a real node app (``create_app``) on a loopback
port; this process plays the pipeline (writes the next part and the playlist,
then ``PlaylistWatch.publish``) and the players (``--held`` blocking reloads
``_HLS_msn/_HLS_part`` for the next part, plus one GET of the hinted part).
Client and server share one event loop, so each figure includes the clients'
own reading of the responses: an upper bound on the origin's share.  The target
(issue 6) is an answer within 100 ms of the part's completion.

    python -m benchmarks.ll_origin --held 1,50,200 --parts 40

``measure()`` is what benchmarks/latency.py may call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import machine, median  # noqa: E402
from broadcaster.app import create_app  # noqa: E402
from broadcaster.config import NodeConfig  # noqa: E402
from broadcaster.keys import PLAYLIST_WATCH, STORE  # noqa: E402
from broadcaster.registry import Broadcast, Visibility  # noqa: E402
from ingest.hls.store import part_uri  # noqa: E402
from ingest.hls.watch import PlaylistPosition, PlaylistWatch  # noqa: E402

BROADCAST = "bench"
PARTS = 4  # parts per segment
PART_TARGET = 0.5


def _write(folder: Path, watch: PlaylistWatch, msn: int, index: int) -> None:
    """Part ``index`` of segment ``msn`` is complete: write it, the playlist, then publish."""
    (folder / part_uri(msn, index)).write_bytes(b"\0" * 40_000)
    lines = ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-TARGETDURATION:2",
             "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
             f"#EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3f}", f"#EXT-X-MEDIA-SEQUENCE:{max(0, msn - 3)}"]
    for seq in range(max(0, msn - 3), msn + 1):
        for i in range(PARTS if seq < msn else index + 1):
            lines.append(f'#EXT-X-PART:DURATION={PART_TARGET:.3f},URI="{part_uri(seq, i)}"')
        if seq < msn:
            lines += ["#EXTINF:2.000,", f"s{seq}.m4s"]
    hint = part_uri(msn, index + 1) if index + 1 < PARTS else part_uri(msn + 1, 0)
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
    tmp = folder / ".index.m3u8.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(folder / "index.m3u8")
    watch.publish(BROADCAST, "source", PlaylistPosition(last_msn=msn - 1, part_msn=msn, last_part=index,
                                                        part_target=PART_TARGET, target_duration=2.0,
                                                        hint_uri=hint))


async def measure(held: int, parts: int) -> list[float]:
    """Seconds from each publish to the last of its ``held`` + 1 held responses read, one per part."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        folder = data / "hls" / BROADCAST / "source"
        folder.mkdir(parents=True)
        # every player here comes from 127.0.0.1 and stands for a different viewer: no per-address caps
        app = create_app(NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=data, admin_token="b" * 20,
                                    hls_max_held_per_address=0, http_max_requests_per_address=0))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        # the origin serves to anyone only a broadcast the registry knows as public
        await app[STORE].create(Broadcast(BROADCAST, "bench", Visibility.PUBLIC, f"live_{BROADCAST}_k", "host_k"))
        port = runner.addresses[0][1]
        watch = app[PLAYLIST_WATCH]
        base = f"http://127.0.0.1:{port}/hls/{BROADCAST}/source"
        delays: list[float] = []
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                async def get(url: str, params: dict[str, str] | None = None) -> None:
                    async with session.get(url, params=params) as resp:
                        assert resp.status == 200, resp.status
                        await resp.read()

                msn, index = 1, 0
                _write(folder, watch, msn, index)
                for _ in range(parts):
                    nxt = (msn, index + 1) if index + 1 < PARTS else (msn + 1, 0)
                    params = {"_HLS_msn": str(nxt[0]), "_HLS_part": str(nxt[1])}
                    requests = [asyncio.ensure_future(get(f"{base}/index.m3u8", params)) for _ in range(held)]
                    requests.append(asyncio.ensure_future(get(f"{base}/{part_uri(*nxt)}")))
                    while watch.waiting(BROADCAST, "source") < len(requests):
                        await asyncio.sleep(0.001)
                    started = time.perf_counter()
                    _write(folder, watch, *nxt)
                    await asyncio.gather(*requests)
                    delays.append(time.perf_counter() - started)
                    msn, index = nxt
        finally:
            await runner.cleanup()
        return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held", default="1,50,200", help="held blocking reloads per part, comma-separated")
    parser.add_argument("--parts", type=int, default=40, help="parts published per measurement")
    args = parser.parse_args()
    print(f"machine: {machine()}; publish -> all held responses read, ms")
    for held in (int(v) for v in args.held.split(",")):
        delays = sorted(asyncio.run(measure(held, args.parts)))
        p90 = delays[int(0.9 * (len(delays) - 1))]
        print(f"held {held:4d} reloads + 1 part: p50 {median(delays) * 1e3:7.2f}  p90 {p90 * 1e3:7.2f}  "
              f"max {delays[-1] * 1e3:7.2f}  ({len(delays)} parts)")


if __name__ == "__main__":
    main()
