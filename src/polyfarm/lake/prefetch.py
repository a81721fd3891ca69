"""Run an iterator ahead in a worker thread, a bounded number of items ahead.

An export has three stages that wait on different things: the database sending the day (the
driver parses ``COPY`` in C++), sorting it (Arrow), and encoding Parquet (Arrow, ZSTD); all three
release the GIL. Chaining them through ``prefetched`` lets each work while the next one does,
and the bounded queue keeps a slow consumer from letting a fast producer fill memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.1


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()


class _Producer(Generic[T]):
    """The worker's side: puts items in ``ready`` until done, failed or told to stop."""

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self.ready: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self._source = iter(items)

    def offer(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self._source:
                if not self.offer(item):
                    return
            self.offer(_DONE)
        except BaseException as exc:  # handed to the consumer, who raises it
            self.offer(_Failed(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # a generator left early: its own cleanup runs here
                close()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread of its own at most ``depth`` items ahead. An error in
    the producer is raised here; closing this iterator early stops the producer and waits
    for it, so no thread outlives the consumer."""
    producer = _Producer(items, depth)
    worker = threading.Thread(target=producer.run, name="polyfarm-prefetch", daemon=True)
    worker.start()
    try:
        while (item := producer.ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]  # the queue holds T, _DONE and _Failed only
    finally:
        producer.stop.set()
        worker.join()
