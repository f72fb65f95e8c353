"""``onair`` command line: ``onair serve`` runs a node, ``onair moderate`` tries moderation settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from broadcaster import config as node_config


def _serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="onair serve", description="Run one onair node.")
    node_config.add_arguments(parser)
    try:
        config = node_config.load(parser.parse_args(list(argv)))
    except node_config.ConfigError as exc:
        print(f"onair serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from aiohttp import web

    from broadcaster.app import create_app
    from broadcaster.chat import CHAT_RELAY
    from broadcaster.heap import HeapFreezer
    from broadcaster.keys import METRICS

    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is an optional speed-up
        pass
    # everything the node writes (databases, tokens, HLS, its workers' output) is its own: 0600/0700
    os.umask(0o077)
    try:
        app = create_app(config)
    except node_config.ConfigError as exc:
        print(f"onair serve: {exc}", file=sys.stderr)
        return 2
    # Process-wide, so owned here rather than by the app (a test process runs many apps).
    # Chat viewers are the node's many long-lived connections: their departures tell when
    # frozen garbage is worth a thaw.
    freezer = HeapFreezer(config.gc_freeze_interval,
                          departures=lambda: app[CHAT_RELAY].departures if CHAT_RELAY in app else 0,
                          connections=lambda: app[CHAT_RELAY].connected if CHAT_RELAY in app else 0)
    freezer.register(app[METRICS].registry)
    app.cleanup_ctx.append(freezer.cleanup_ctx)
    from broadcaster.access_log import PathAccessLogger

    web.run_app(app, host=config.host, port=config.http_port,
                access_log=logging.getLogger("onair.access") if config.access_log else None,
                access_log_class=PathAccessLogger,
                print=lambda msg: logging.getLogger("onair.node").info(
                    "HTTP listening on %s:%d", config.host, config.http_port))
    return 0


def _moderate(argv: Sequence[str]) -> int:
    from broadcaster.moderate_cmd import main as moderate_main
    return moderate_main(list(argv))


COMMANDS = {"serve": _serve, "moderate": _moderate}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print("usage: onair {serve,moderate} [options]\n\n"
              "  serve     run a node (RTMP/WHIP ingest, HLS, API, chat)\n"
              "  moderate  read comments on stdin, print moderation verdicts as JSON lines",
              file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
