"""Bounded streams: lists of bounded size, and writes on a thread behind a bounded queue (memory
stays bounded by the batch, whatever the stream's length)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class BackgroundWriter:
    """Runs writes on one thread while the caller keeps reading (bounded queue: bounded memory).

    The first write error stops the writer and is re-raised in the caller at its next submit or at
    exit; batches after a failed one are never written.
    """

    def __init__(self, write: Callable[[Any], None], depth: int = 2) -> None:
        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mongo-writer", daemon=True)

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def submit(self, item: Any) -> None:
        self._raise_if_failed()
        self._queue.put(item)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if exc_type is None:
            self._raise_if_failed()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as error:  # re-raised in the caller's thread
                    self._error = error

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


_STOP = object()
