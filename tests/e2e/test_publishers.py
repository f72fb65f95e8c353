"""Publisher conformance: real encoders against a real node, each replay whole.

GStreamer's ``rtmpsink`` (librtmp, the RTMP lineage OBS comes from) and
``rtmp2sink``, with and without B-frames, all four at once on one node for
30 s: that is load, and under load GStreamer's flvmux stamps frames with
duplicate decoding times and wrong composition offsets (what crashed the
worker in issue 13).  Then eight ffmpeg variants at once: a live x264 encode
with B-frames, 25 fps, 44.1 kHz audio, mono audio, timestamps that start just
below ffmpeg's 31-bit FLV clock limit and wrap, video only, a resolution
change mid-stream (in-band SPS), a 4 s GOP.  (The publishers and the runner:
``tests/support/conformance.py``.)

For every publisher: it exits cleanly; the broadcast's worker never failed and
dropped no packet (the API, before the end); after the end the replay decodes
with ffmpeg without a single error, as long as what was published (± 1 s).
Across the node: ``onair_transcoder_worker_failures_total`` stays 0 and the log
holds no traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support.conformance import FFMPEG, GSTREAMER, Case, Outcome, run_cases

pytestmark = pytest.mark.e2e

TOLERANCE = 1.0  # seconds, replay vs published


def check(node, cases: list[Case], tmp_path: Path, timeout: float) -> list[Outcome]:  # type: ignore[no-untyped-def]
    require_tool("ffmpeg")
    require_tool("ffprobe")
    outcomes = run_cases(node, cases, tmp_path, timeout)
    for outcome in outcomes:
        print(f"conformance {outcome.case.name}: published {outcome.published:.2f} s, replay {outcome.replay:.2f} s, "
              f"repairs {outcome.transcoder.get('repairs') or 'none'}")
    for outcome in outcomes:
        name, transcoder = outcome.case.name, outcome.transcoder
        assert outcome.exit_code == 0, f"publisher {name} exited with {outcome.exit_code}:\n{outcome.log[-2000:]}"
        assert transcoder["worker_failures"] == 0 and transcoder["restarts"] == 0, (name, transcoder)
        assert transcoder["packets_dropped"] == {} and transcoder["dropped_units"] == 0, (name, transcoder)
        assert outcome.decode_errors == "", f"{name}: ffmpeg decoding the replay reported:\n{outcome.decode_errors[:3000]}"
        assert abs(outcome.replay - outcome.published) <= TOLERANCE, \
            f"{name}: replay {outcome.replay:.2f} s, published {outcome.published:.2f} s"
    metrics = node.metrics()
    assert re.search(r"^onair_transcoder_worker_failures_total 0\.0$", metrics, re.M), metrics
    assert "onair_transcoder_packet_errors_total{" not in metrics
    assert "Traceback" not in node.log(), node.log()[-5000:]
    return outcomes


def test_gstreamer_publishers_under_load(node_factory, tmp_path: Path) -> None:
    require_tool("gst-launch-1.0")
    node = node_factory(ladder="source,240p", reconnect_grace=60)
    check(node, GSTREAMER, tmp_path, timeout=240)


def test_ffmpeg_publisher_variants(node_factory, tmp_path: Path) -> None:
    node = node_factory(ladder="source,240p", reconnect_grace=60)
    outcomes = check(node, FFMPEG, tmp_path, timeout=120)
    repairs = {outcome.case.name: outcome.transcoder["repairs"] for outcome in outcomes}
    # the bitstream-level repairs these publishers need
    assert repairs["resolution-change"].get("parameter_sets") == 1, repairs
    assert repairs["timestamp-offset"].get("timestamp_jump", 0) >= 1, repairs
    for clean in ("x264-bframes", "25fps", "44.1kHz", "mono", "video-only", "4s-gop"):
        assert repairs[clean] == {}, (clean, repairs[clean])  # a publisher that gets it right is left alone
