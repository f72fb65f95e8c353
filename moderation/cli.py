"""`onair moderate`: moderate comments from stdin, one JSON verdict a line on stdout.

    onair moderate [--level off|low|medium|high] [--blocked TERM ...] [--allowed TERM ...]
                   [--settings-json FILE]

Each input line is one comment from the same test viewer; rate limits,
duplicate detection and slow mode are off here (they need a real clock and
real viewers), so the output shows the content verdict of every line.
Runnable as `python -m moderation.cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Sequence

from .context import CommentContext
from .errors import SettingsError
from .pipeline import ModerationPipeline
from .settings import ModerationSettings, Strictness

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="onair moderate", description="Moderate comments read from stdin (one per line).")
    p.add_argument("--level", choices=[s.value for s in Strictness], help="harassment strictness (default medium)")
    p.add_argument("--blocked", nargs="+", default=[], metavar="TERM", help="blocked terms (* wildcards)")
    p.add_argument("--allowed", nargs="+", default=[], metavar="TERM", help="allowed terms")
    p.add_argument("--settings-json", metavar="FILE", help="ModerationSettings as JSON (options above override it)")
    return p


def load_settings(args: argparse.Namespace, base: ModerationSettings | None = None) -> ModerationSettings:
    """The settings to judge with: ``base`` (a broadcast's stored ones) or ``--settings-json``, then the options."""
    settings = base or ModerationSettings()
    if args.settings_json:
        try:
            with open(args.settings_json, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise SettingsError(f"cannot read settings file {args.settings_json}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise SettingsError(f"settings file {args.settings_json} is not valid JSON: {e.msg}") from None
        settings = ModerationSettings.from_dict(data)
    changes: dict[str, object] = {}
    if args.level:
        changes["strictness"] = Strictness(args.level)
    if args.blocked:
        changes["blocked_terms"] = settings.blocked_terms + tuple(args.blocked)
    if args.allowed:
        changes["allowed_terms"] = settings.allowed_terms + tuple(args.allowed)
    # the CLI judges content, not pace: lines arrive far faster than chat
    changes.update(rate_limit_count=1_000_000_000, duplicate_window=0.0, slow_mode_seconds=0.0)
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None, base: ModerationSettings | None = None) -> int:
    """``base``: settings to start from instead of the defaults (``onair moderate --broadcast``)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        settings = load_settings(args, base)
    except SettingsError as e:
        print(f"onair moderate: {e}", file=sys.stderr)
        return 2
    pipeline = ModerationPipeline(lambda _bid: settings)
    t = 0.0
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        t += 1.0
        verdict = pipeline.moderate(CommentContext.create("cli", "cli", text, now=t))
        sys.stdout.write(json.dumps(verdict.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
