"""What an RTMP connection may cost the node before and after its key is checked: pure decisions.

A connection whose publish is not accepted yet is anyone on the internet, so it
may hold little and must move on:

* **a small buffer**: before the accept, messages (and so partial messages and
  incomplete chunks, which the chunk decoder bounds by the message size) are
  capped at ``pre_accept_message_size`` bytes; a header announcing more is refused
  the moment it is read (``message_too_large``) and the connection closed.  The
  connect and publish commands real encoders send are a few hundred bytes.
* **a deadline**: handshake, connect and publish within ``accept_timeout``
  seconds of the TCP connect (``accept_timeout``); the time the node spends
  deciding on the key is not the client's.

Once accepted, a publisher must keep sending at least ``min_rate`` bytes a
second, averaged over windows of ``rate_window`` seconds (``too_slow``): a real
encoder sends tens of KiB a second, a trickle of one byte now and then is not
a publisher.

:class:`Progress` is the clock-free bookkeeping the server asks when its one
timer per connection fires; :class:`Admission` is how the server asks the node
whether one more connection from an address may be served (per-node and
per-address caps live in the node: ``broadcaster/caps.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Before the accept: a few KiB (an OBS connect command is ~400 bytes, a publish ~60).
DEFAULT_PRE_ACCEPT_MESSAGE_SIZE = 8 * 1024
DEFAULT_ACCEPT_TIMEOUT = 10.0
#: 1,000 bytes/s is 8 kbit/s: below any real encoder's audio alone.
DEFAULT_MIN_RATE = 1000
DEFAULT_RATE_WINDOW = 10.0


@dataclass(frozen=True)
class RtmpLimits:
    pre_accept_message_size: int = DEFAULT_PRE_ACCEPT_MESSAGE_SIZE
    accept_timeout: float = DEFAULT_ACCEPT_TIMEOUT
    #: bytes a second an accepted publisher must average over each window; 0 turns the check off
    min_rate: int = DEFAULT_MIN_RATE
    rate_window: float = DEFAULT_RATE_WINDOW

    def __post_init__(self) -> None:
        if self.pre_accept_message_size < 256:
            raise ValueError("pre_accept_message_size must be at least 256 bytes")
        if self.accept_timeout <= 0:
            raise ValueError("accept_timeout must be positive")
        if self.min_rate < 0 or self.rate_window <= 0:
            raise ValueError("min_rate must be >= 0 and rate_window positive")


@dataclass(frozen=True)
class Stalled:
    """The connection made too little progress: close it (``code`` for metrics, ``reason`` for the log)."""

    code: str
    reason: str


class Progress:
    """Whether one connection keeps its deadlines; the caller owns the clock and the byte count.

    ``check(now, bytes_in)`` answers :class:`Stalled` or the time at which to ask
    again (at the latest).  ``accepted(now, bytes_in)`` starts the data-rate windows.
    """

    __slots__ = ("limits", "started", "accepted_at", "_window_start", "_window_bytes")

    def __init__(self, limits: RtmpLimits, now: float) -> None:
        self.limits = limits
        self.started = now
        self.accepted_at: float | None = None
        self._window_start = now
        self._window_bytes = 0

    def accepted(self, now: float, bytes_in: int) -> None:
        if self.accepted_at is None:
            self.accepted_at = now
            self._window_start, self._window_bytes = now, bytes_in

    def check(self, now: float, bytes_in: int) -> Stalled | float:
        limits = self.limits
        if self.accepted_at is None:
            due = self.started + limits.accept_timeout
            if now >= due:
                return Stalled("accept_timeout", f"no accepted publish within {limits.accept_timeout:g} s "
                                                 f"of connecting")
            return due
        if limits.min_rate <= 0:
            return now + limits.rate_window
        due = self._window_start + limits.rate_window
        if now < due:
            return due
        elapsed = now - self._window_start
        received = bytes_in - self._window_bytes
        if received < limits.min_rate * elapsed:
            return Stalled("too_slow", f"{received} bytes in {elapsed:.1f} s, below the minimum of "
                                       f"{limits.min_rate} bytes/s")
        self._window_start, self._window_bytes = now, bytes_in
        return now + limits.rate_window

    def restart_window(self, now: float, bytes_in: int) -> None:
        """Start a new rate window: time the node made the publisher wait (reading paused while
        it awaited something, or while the client did not read) is not the publisher's."""
        if self.accepted_at is not None:
            self._window_start, self._window_bytes = now, bytes_in


@dataclass(frozen=True, slots=True)
class Silent:
    """No data for the idle timeout, or no handshake in time (the server's ``TimeoutError``)."""


SILENT = Silent()


def next_check(progress: Progress, now: float, *, bytes_in: int, idle_timeout: float, busy: bool,
               write_paused_at: float | None, handshake_done: bool, handshake_deadline: float,
               last_data: float) -> Stalled | Silent | float:
    """Everything the server's one timer per connection decides: a verdict, or when to ask again.

    ``busy``: the server awaits something for the connection (the hub's decision on a key),
    ``write_paused_at``: since when the client has not read what we sent (None: it reads).
    Time the node made a publisher wait starts a new rate window instead of counting against it.
    """
    if write_paused_at is not None:
        due = write_paused_at + idle_timeout
        if now >= due:
            return Stalled("write_timeout", f"client has not read for {idle_timeout:g} s")
    elif busy:
        due = now + idle_timeout  # waiting on the hub is not the client's silence
    elif not handshake_done:
        due = handshake_deadline
        if now >= due:
            return SILENT
    else:
        due = last_data + idle_timeout
        if now >= due:
            return SILENT
    if busy or (progress.accepted_at is not None and write_paused_at is not None):
        progress.restart_window(now, bytes_in)
        return due
    verdict = progress.check(now, bytes_in)
    return verdict if isinstance(verdict, Stalled) else min(due, verdict)


class Admission(Protocol):
    """The node's per-node and per-address connection caps, as the RTMP server sees them."""

    def enter(self, address: str) -> str | None:
        """None: admitted (call :meth:`leave` with the same address when it ends); else a refusal code."""

    def leave(self, address: str) -> None: ...
