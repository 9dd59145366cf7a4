"""The bounded, logged backoff every service uses while it waits for what it needs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class GaveUp(RuntimeError):
    pass


# Something that kept working this long before it failed had recovered: its next pause starts
# small again.
STABLE_AFTER = 60.0


class Backoff:
    """The pauses between attempts: `initial`, then doubling up to `maximum`; `reset()` after a
    success starts again at `initial`. Not thread-safe: one per loop that waits."""

    def __init__(self, initial: float = 0.5, maximum: float = 10.0):
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        """The pause before the next attempt (and the one after it doubles)."""
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial

    def after_run(self, seconds: float) -> float:
        """The pause after something that ran `seconds` failed: a long run counts as a success."""
        if seconds > STABLE_AFTER:
            self.reset()
        return self.next()


def retry(
    action: Callable[[], T],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    timeout: float = 300.0,
    initial: float = 0.5,
    maximum: float = 10.0,
    stop: threading.Event | None = None,
) -> T:
    """Call `action` until it stops raising `retry_on`, doubling the pause up to `maximum`.

    Each failure is logged with what we wait for and why; after `timeout` seconds it raises
    GaveUp with the last reason, so a supervisor restarts the service visibly.
    """
    deadline = time.monotonic() + timeout
    backoff = Backoff(initial, maximum)
    while True:
        try:
            return action()
        except retry_on as exc:
            reason = one_line(exc)
            delay = backoff.next()
            if time.monotonic() + delay > deadline or (stop is not None and stop.is_set()):
                raise GaveUp(f"gave up waiting for {what} after {timeout:.0f}s: {reason}") from exc
            log.warning("waiting for %s: %s; retrying in %.1fs", what, reason, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise GaveUp(f"stopped while waiting for {what}") from exc
            else:
                time.sleep(delay)


def one_line(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error; its own text adds a multi-line SQL and URL dump.
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
