"""Moderation filters, one job each; `moderation.pipeline` orders them."""

from .base import Filter

__all__ = ["Filter"]
