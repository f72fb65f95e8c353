"""The HTTP access log (``--access-log``): method, path, status, bytes and time of every request.

The query string is left out on purpose: on a restricted broadcast it carries playback grants
and object signatures, which are secrets and never logged.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class PathAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %d %.1fms", request.method, request.path, response.status,
                         response.body_length, time * 1000)
