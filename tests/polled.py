"""A python-rtmidi JACK input for tests, polled by a thread.

Never a callback: rtmidi runs a Python callback on JACK's process thread, which then waits
for the GIL, and cancel_callback() at teardown deadlocked against it on a loaded machine
(the whole suite hung). Subclasses say what to keep of each message in `receive`.
"""
from __future__ import annotations

import threading
import time


class PolledJackInput:
    def __init__(self, client: str):
        import rtmidi

        self.rtmidi = rtmidi
        self.midiin = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client, queue_size_limit=8192)
        self.midiin.ignore_types(sysex=True, timing=True, active_sense=True)
        self.events: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def receive(self, msg: tuple, delta: float) -> None:
        raise NotImplementedError

    def _poll(self):
        while not self._stop.is_set():
            self._drain()
            time.sleep(0.0002)

    def _drain(self):
        """Hand every queued message to `receive`."""
        while (event := self.midiin.get_message()) is not None:
            self.receive(tuple(event[0]), event[1])

    def close(self):
        self._stop.set()
        self._thread.join(2)
        # What arrived while the poller was behind (a loaded machine) is still queued: keep it,
        # or the last messages (the release on stop) read as lost.
        if not self._thread.is_alive():
            self._drain()
        self.midiin.close_port()
        self.midiin.delete()
