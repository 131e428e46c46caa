"""The producer: the generator and the arranger, run on a thread ahead of playback,
so the player never waits on inference."""
from __future__ import annotations

import queue
import threading

from .arrange import phrases


class Producer:
    """Runs arrange.phrases() (the generator, steered by the preset) on a thread, `ahead` phrases ahead.

    A crash on the thread is handed to the player through the queue, so the
    player releases its notes and re-raises it in the main thread.
    """

    def __init__(self, generator, preset, seed: int = 0, ahead: int = 3, candidates: int | None = None):
        self.generator, self.preset, self.seed, self.candidates = generator, preset, seed, candidates
        self.queue: queue.Queue = queue.Queue(maxsize=ahead)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="midigan-producer", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _run(self):
        pr = self.preset
        try:
            for (notes,) in phrases(self.generator, pr, self.seed, candidates=self.candidates):
                if self.stopped.is_set() or not self._put(notes):
                    return
            self._put(RuntimeError("the generator's stream ended"))
        except BaseException as e:  # handed over; the player decides what it means
            self._put(e)

    def get(self, timeout: float):
        """The next list of notes, or None after `timeout`; raises the thread's error."""
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            if isinstance(item, (ValueError, OSError, RuntimeError)):
                raise item
            detail = f"{type(item).__name__}: {item}" if str(item) else type(item).__name__
            raise RuntimeError(f"the generator failed: {detail}") from item
        return item

    def close(self, timeout: float = 2.0):
        """Stop the thread and wait for it: an inference still running while the
        interpreter shuts down can crash it."""
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)
