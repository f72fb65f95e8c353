"""The publisher conformance cases as a measurement: what each publisher's broadcast and replay look like.

Runs the publishers of ``tests/support/conformance.py`` (GStreamer
rtmpsink/rtmp2sink all at once for 30 s, then eight ffmpeg variants at once
for 12 s) against a real node of this checkout and prints, per publisher:
worker restarts and dropped units (API), media repairs, the published duration
(the ffmpeg cases' ``-t``, the GStreamer cases' own recording of what they
sent), the replay's decoded duration and how many error lines
``ffmpeg -v error -i <replay> -f null -`` printed; per group, the worker
tracebacks in the node log.  Asserts nothing (``tests/e2e/test_publishers.py``
does).  To measure a version without the repair stage, copy this file and
``tests/support/{conformance,publish,node}.py`` into that checkout.

    python -m benchmarks.publishers [gst|ffmpeg|both] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.conformance import FFMPEG, GSTREAMER, Case, run_cases  # noqa: E402
from tests.support.node import NodeProcess  # noqa: E402


def measure(group: str, cases: list[Case], tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    node = NodeProcess(tmp / "node", ladder="source,240p", reconnect_grace=60, segment_target=1)
    node.start()
    try:
        for outcome in run_cases(node, cases, tmp, timeout=300):
            transcoder = outcome.transcoder
            errors = [line for line in outcome.decode_errors.splitlines() if "Last message repeated" not in line]
            print(f"{group} {outcome.case.name}: exit {outcome.exit_code}, restarts {transcoder['restarts']}, "
                  f"dropped units {transcoder['dropped_units']}, published {outcome.published:.2f} s, "
                  f"replay {outcome.replay:.2f} s, ffmpeg error lines {len(errors)}, "
                  f"repairs {transcoder.get('repairs', 'n/a')}")
        print(f"{group}: worker tracebacks in the node log: {node.log().count('Traceback')}")
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="?", default="both", choices=["gst", "ffmpeg", "both"])
    parser.add_argument("--out", type=Path, default=None, help="keep the node's files and the recordings here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        if args.which in ("gst", "both"):
            measure("gst", GSTREAMER, out / "gst")
        if args.which in ("ffmpeg", "both"):
            measure("ffmpeg", FFMPEG, out / "ffmpeg")


if __name__ == "__main__":
    main()
