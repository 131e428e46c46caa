"""Stopping a live player from a signal handler: a lock-free flag, and SIGINT/SIGTERM
turned into setting it."""
from __future__ import annotations

import signal
import threading


class StopFlag:
    """A stop flag that a signal handler may set: `set()`, `is_set()`, `reason`.

    No lock, unlike threading.Event: a second signal can land while the first one's
    handler is still inside set(), and Event.set() holds a lock there that the nested
    handler then waits for forever (the player hung after a double Ctrl-C). Setting a
    bool is atomic under the GIL, and the player polls the flag between short naps.
    """

    def __init__(self):
        self._set = False
        self.reason = None

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class StopOnSignals:
    """While active, SIGINT and SIGTERM only set `event` (a StopFlag) and its `reason`.

    Only a flag: the player notices within one short nap, and a second Ctrl-C
    can never interrupt the release that follows, nor the port's closing. Wrap
    the whole open-port-play-close sequence in it.
    """

    def __init__(self, event: StopFlag | None = None):
        self.event = event or StopFlag()
        self.old = {}

    def _handler(self, signum, _frame):
        if self.event.reason is None:
            self.event.reason = signal.Signals(signum).name
        self.event.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handler)
        return self.event

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)
        return False
