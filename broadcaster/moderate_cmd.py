"""``onair moderate``: the moderation CLI, with ``--broadcast ID`` reading that broadcast's stored settings.

    onair moderate [--broadcast ID [--data-dir DIR | --redis-url URL | --config FILE]]
                   [--level off|low|medium|high] [--blocked TERM ...] [--allowed TERM ...]

Without ``--broadcast`` this is ``moderation.cli`` unchanged.  With it, the
node's configuration (same options, ``ONAIR_*`` env vars and TOML file as
``onair serve``) locates the moderation store, and the broadcast's settings
are what ``moderation.cli`` starts from; ``--level``/``--blocked``/``--allowed``
still override them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from broadcaster import config as node_config

__all__ = ["main", "load_broadcast_settings"]


class BroadcastNotFound(LookupError):
    pass


async def load_broadcast_settings(config: node_config.NodeConfig, broadcast_id: str) -> dict[str, Any]:
    """The stored settings of ``broadcast_id`` (defaults if the host never changed them)."""
    from broadcaster.registry import BroadcastStore, SqliteBroadcastStore
    from moderation.settings import ModerationSettings
    from moderation.store import open_store

    registry: BroadcastStore
    redis = None
    if config.redis_url:
        from redis.asyncio import Redis

        from broadcaster.registry_redis import RedisBroadcastStore
        redis = Redis.from_url(config.redis_url)
        registry = RedisBroadcastStore(redis)
    else:
        registry = SqliteBroadcastStore(config.db_path)
    await registry.open()
    try:
        if await registry.get(broadcast_id) is None:
            raise BroadcastNotFound(f"no broadcast {broadcast_id!r}")
    finally:
        await registry.close()
        if redis is not None:
            await redis.aclose()
    store = open_store(config.redis_url, config.data_dir, retention=config.chat_retention)
    await store.open()
    try:
        doc = await store.get_settings(broadcast_id)
    finally:
        await store.close()
    return doc if doc is not None else ModerationSettings().to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    from moderation.cli import main as moderate_main

    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="onair moderate", add_help=False, allow_abbrev=False)
    parser.add_argument("--broadcast", metavar="ID")
    parser.add_argument("--config")
    parser.add_argument("--data-dir")
    parser.add_argument("--redis-url")
    known, rest = parser.parse_known_args(args)
    if known.broadcast is None:
        if known.config or known.data_dir or known.redis_url:
            print("onair moderate: --config/--data-dir/--redis-url need --broadcast", file=sys.stderr)
            return 2
        return moderate_main(rest)
    if "--settings-json" in rest:
        print("onair moderate: --broadcast and --settings-json cannot be combined", file=sys.stderr)
        return 2
    from moderation.errors import SettingsError
    from moderation.settings import ModerationSettings

    try:
        # (load reads only the options the namespace has; the rest come from the env and the file)
        config = node_config.load(argparse.Namespace(config=known.config, data_dir=known.data_dir,
                                                     redis_url=known.redis_url))
        settings = ModerationSettings.from_dict(asyncio.run(load_broadcast_settings(config, known.broadcast)))
    except (node_config.ConfigError, BroadcastNotFound, SettingsError) as exc:
        print(f"onair moderate: {exc}", file=sys.stderr)
        return 2
    except (OSError, RedisError) as exc:  # Redis or the data dir unreachable
        print(f"onair moderate: cannot read the moderation store: {exc}", file=sys.stderr)
        return 2
    return moderate_main(rest, base=settings)


if __name__ == "__main__":
    sys.exit(main())
