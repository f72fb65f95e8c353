"""Finding links (URLs and bare domains) in comment text; pure functions."""

from __future__ import annotations

import re

__all__ = ["find_links", "link_host"]

_TLDS = ("com|org|net|io|co|uk|ca|de|fr|nl|es|it|eu|tv|gg|ly|me|info|biz|edu|gov|ru|us|app|dev|xyz|"
         "live|link|site|online|shop|club|be|ch|au|jp|cn|in|br|pl|se|no|fi|dk|at|ws|to|cc|tk")
_LINK_RE = re.compile(
    r"(?i)\b(?:https?://[^\s<>\"']+|www\.[^\s<>\"']+|"
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS + r")\b(?:/[^\s<>\"']*)?)"
)


def find_links(text: str) -> list[tuple[int, int, str]]:
    """(start, end, link) for each link in `text`."""
    return [(m.start(), m.end(), m.group(0)) for m in _LINK_RE.finditer(text)]


def link_host(link: str) -> str:
    """Lower-case host of a link, without scheme, port, path or leading www."""
    s = link.lower()
    if "://" in s:
        s = s.split("://", 1)[1]
    s = re.split(r"[/?#:]", s, maxsplit=1)[0]
    return s[4:] if s.startswith("www.") else s
