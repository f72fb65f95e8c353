"""`python -m moderation.cli`: one comment a line in, one JSON verdict a line out."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moderation.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_cli_verdicts() -> None:
    lines = ["hello there", "lol fuck this", "go kill yourself", "nobody wants you here, idiot",
             "spoilerific ending", "Scunthorpe General Hospital", "你好", "hello there"]
    r = run(["--blocked", "spoil*"], "\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["verdict"] for o in out] == ["publish", "publish_censored", "reject", "hold", "reject",
                                          "publish", "publish", "publish"]  # repeats are not spam here
    assert out[1] == {"verdict": "publish_censored", "text": "lol **** this", "filter": "profanity",
                      "reason": "profanity", "language": "en", "score": None}
    assert out[6]["language"] == "zh"
    assert out[4]["reason"] == "blocked_term"


def test_cli_levels_and_allowed(tmp_path) -> None:
    assert json.loads(run(["--level", "high"], "I hate you\n").stdout)["verdict"] == "hold"
    assert json.loads(run(["--level", "off"], "go kill yourself\n").stdout)["verdict"] == "publish"
    assert json.loads(run(["--allowed", "Twatt"], "visit Twatt\n").stdout)["verdict"] == "publish"
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"strictness": "high", "blocked_terms": ["zap"]}))
    out = [json.loads(x) for x in run(["--settings-json", str(f)], "zap\nI hate you\n").stdout.splitlines()]
    assert [o["verdict"] for o in out] == ["reject", "hold"]


def test_cli_bad_settings(tmp_path) -> None:
    f = tmp_path / "s.json"
    f.write_text('{"strictness": "extreme"}')
    r = run(["--settings-json", str(f)], "")
    assert r.returncode == 2
    assert r.stderr.strip() == "onair moderate: strictness must be one of off, low, medium, high"
    r = run(["--settings-json", str(tmp_path / "nope.json")], "")
    assert r.returncode == 2 and "cannot read settings file" in r.stderr
    r = run(["--level", "extreme"], "")
    assert r.returncode == 2
