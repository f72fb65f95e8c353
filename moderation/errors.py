"""Errors raised by the moderation package.

    ModerationError            root of every error raised here
    └── SettingsError          invalid ModerationSettings input (also a ValueError)
"""

from __future__ import annotations

__all__ = ["ModerationError", "SettingsError"]


class ModerationError(Exception):
    """Root of the moderation package's errors."""


class SettingsError(ModerationError, ValueError):
    """A ModerationSettings field has an invalid value (exact message says which)."""
