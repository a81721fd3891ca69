"""Run an iterator ahead in a worker thread, a bounded number of items ahead.

An export has three stages that wait on different things: the database sending the day (the
driver parses ``COPY`` in C++), sorting it (Arrow), and encoding Parquet (Arrow, ZSTD); all three
release the GIL. Chaining them through ``prefetched`` lets each work while the next one does,
and the bounded queue keeps a slow consumer from letting a fast producer fill memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.1


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()


class _Producer(Generic[T]):
    """A worker's side: puts items in ``ready`` until done, failed or told to stop."""

    def __init__(self, items: Iterable[T], ready: queue.Queue[object], stop: threading.Event):
        self.ready = ready
        self.stop = stop
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
    return merged([items], depth)


def merged(sources: Sequence[Iterable[T]], depth: int = 2) -> Iterator[T]:
    """The items of every source, each produced by a thread of its own, in the order they
    come (interleaved), at most ``depth`` items ahead; otherwise as ``prefetched``."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    workers = [
        threading.Thread(target=_Producer(items, ready, stop).run, name="polyfarm-prefetch")
        for items in sources
    ]
    for worker in workers:
        worker.start()
    try:
        running = len(workers)
        while running:
            item = ready.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, _Failed):
                raise item.error
            else:
                yield item  # type: ignore[misc]  # the queue holds T, _DONE and _Failed only
    finally:
        stop.set()
        for worker in workers:
            worker.join()
