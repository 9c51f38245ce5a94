"""A first-come, first-served lock: scans from several sessions take turns batch by batch.

threading.Lock lets the thread that just released it take it again at once, so a long scan that
locks each batch would still starve a short one waiting beside it. Here release hands the lock
straight to the longest waiter.
"""
from __future__ import annotations

import threading
from collections import deque


class FairLock:
    def __init__(self):
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            turn.wait()
        except BaseException:  # interrupted while waiting: leave the queue, or pass on a lock already handed over
            with self._mutex:
                handed_over = turn not in self._waiters
                if not handed_over:
                    self._waiters.remove(turn)
            if handed_over:
                self.release()
            raise

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unlocked FairLock")
            if self._waiters:
                self._waiters.popleft().set()  # stays held: ownership passes to the next in line
            else:
                self._held = False

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
