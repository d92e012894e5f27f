"""A delaying, de-duplicating work queue: each key waits at most once and runs on one worker."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Hashable


class WorkQueue:
    """Keys due for processing; a key added while pending or in progress is coalesced."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._active: set[Hashable] = set()
        self._again: dict[Hashable, float] = {}
        self._sequence = 0
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._due) + len(self._again)

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Process `key` after `delay` seconds, or sooner if it is already due sooner."""
        due = time.monotonic() + delay
        with self._cond:
            if self._closed:
                return
            if key in self._active:
                self._again[key] = min(due, self._again.get(key, due))
                return
            self._push(key, due)

    def _push(self, key: Hashable, due: float) -> None:
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        self._sequence += 1
        heapq.heappush(self._heap, (due, self._sequence, key))
        self._cond.notify()

    def get(self, timeout: float) -> Hashable | None:
        """The next due key (now being processed), or None after `timeout` or once closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    self._active.add(key)
                    return key
                remaining = deadline - now
                if remaining <= 0:
                    return None
                wait = min(remaining, self._heap[0][0] - now) if self._heap else remaining
                self._cond.wait(wait)
            return None

    def done(self, key: Hashable) -> None:
        """Mark `key` processed; requeue it if it was added meanwhile."""
        with self._cond:
            self._active.discard(key)
            if key in self._again and not self._closed:
                self._push(key, self._again.pop(key))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
