"""A broadcast's details beyond its title: description and scheduled start, checked as the API receives them."""

from __future__ import annotations

import math
import time

MAX_TITLE = 200
MAX_DESCRIPTION = 2000
#: what PATCH /api/broadcasts/{id} may change
EDITABLE = ("title", "description", "scheduled_start")
#: how far ahead a broadcast may be scheduled
MAX_AHEAD = 2 * 366 * 24 * 3600.0


class DetailsError(ValueError):
    """A field is wrong; the message says which and why."""


def title(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise DetailsError("'title' is required and must be a non-empty string")
    if len(raw) > MAX_TITLE:
        raise DetailsError(f"'title' is longer than {MAX_TITLE} characters")
    return raw.strip()


def description(raw: object) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise DetailsError("'description' must be a string")
    if len(raw) > MAX_DESCRIPTION:
        raise DetailsError(f"'description' is longer than {MAX_DESCRIPTION} characters")
    return raw.strip()


def scheduled_start(raw: object, now: float | None = None) -> float | None:
    """Unix seconds (a number), or None/absent for no schedule."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise DetailsError("'scheduled_start' must be a Unix time in seconds (a number) or null")
    now = time.time() if now is None else now
    if raw < now - 24 * 3600:
        raise DetailsError("'scheduled_start' is more than a day in the past")
    if raw > now + MAX_AHEAD:
        raise DetailsError("'scheduled_start' is more than two years ahead")
    return float(raw)
