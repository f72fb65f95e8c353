"""Playlists of a restricted broadcast as a granted viewer gets them.  Pure text in, text out.

- A master playlist names media playlists (variant lines, ``#EXT-X-MEDIA`` URIs): each gets the
  viewer's grant.  ``master_template`` cuts the text where the grant goes, once per playlist
  version; ``fill`` puts a viewer's grant in.
- A media playlist names objects (``#EXT-X-MAP``, ``#EXT-X-PART``, ``#EXT-X-PRELOAD-HINT``, segment
  lines): each gets an object signature, the same for every viewer.  ``#EXT-X-RENDITION-REPORT`` URIs
  stay as they are: they only identify a sibling rendition (a player matches them against the
  playlist URLs it has, by prefix) and are never fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
#: tags whose URI a player never fetches
_UNFETCHED = ("#EXT-X-RENDITION-REPORT:",)
_CUT = "\x00"


def _with_param(uri: str, param: str) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{param}"


def _each_uri(text: str, replace: Callable[[str], str]) -> str:
    out = []
    for line in text.split("\n"):
        if line.startswith("#"):
            if "URI=" in line and not line.startswith(_UNFETCHED):
                line = _URI_ATTRIBUTE.sub(lambda m: f'URI="{replace(m.group(1))}"', line)
        elif line.strip():
            line = replace(line.strip())
        out.append(line)
    return "\n".join(out)


def master_template(text: str, param: str) -> tuple[str, ...]:
    """``text`` cut after each media playlist URI plus ``?<param>=`` (or ``&``): ``fill`` joins the pieces."""
    if _CUT in text:
        raise ValueError("playlist holds a NUL character")
    return tuple(_each_uri(text, lambda uri: _with_param(uri, param + "=") + _CUT).split(_CUT))


def fill(template: tuple[str, ...], value: str) -> str:
    """The master playlist of ``master_template`` with ``value`` (a URL-safe grant) after each cut."""
    return value.join(template)


def sign_objects(text: str, signature: Callable[[str], str], param: str) -> str:
    """``text`` with ``?<param>=<signature(uri)>`` appended to every object URI it makes a player fetch."""
    return _each_uri(text, lambda uri: _with_param(uri, f"{param}={signature(uri)}"))
