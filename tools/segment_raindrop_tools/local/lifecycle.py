"""What the local stand-ins (moto, the Raindrop and Segment receivers) and local mode share:
``start()``, ``stop()``, and a ``with`` block around them that also takes a started one
(``with RaindropReceiver().start() as receiver``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Service(ABC):
    @property
    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
