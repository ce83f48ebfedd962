"""Local emulators of vector-database wire protocols, for tests (vecver's and yours).

An emulator is a small server in a background thread of the current process that speaks
one database's protocol well enough that the database's official client cannot tell the
difference for what vecver (and a typical user's test) does. Start one, point the
official client (or a vecver backend) at :attr:`Emulator.url`, stop it at the end::

    from vecver.testing.emulators import create

    with create("pinecone") as emu:
        pc = Pinecone(api_key="test", host=emu.url)
        ...

or from a shell: ``vecver emulator pinecone --port 5080``.

:data:`EMULATORS` maps a kind to a factory taking keyword options; adding a kind is one
entry (the factory imports its module lazily, so importing this package imports no
emulator). :func:`create` builds one by kind and raises
:class:`~vecver.errors.InvalidArgument` for an unknown kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ...errors import InvalidArgument

__all__ = ["EMULATORS", "Emulator", "EmulatorBase", "create", "kinds"]


@runtime_checkable
class Emulator(Protocol):
    """What every emulator offers: ``start()`` (returns the emulator, serving when it
    returns), ``url`` and ``port`` (valid after ``start``), ``stop()`` (idempotent), and
    use as a context manager (``with`` starts it unless started, and stops it)."""

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...

    def start(self) -> Emulator: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Emulator: ...

    def __exit__(self, *exc: object) -> None: ...


class EmulatorBase(ABC):
    """A convenience base: the context-manager protocol on top of ``start``/``stop``."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The base URL clients connect to (``http://127.0.0.1:PORT``)."""

    @property
    @abstractmethod
    def port(self) -> int:
        """The TCP port served."""

    @property
    @abstractmethod
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""

    @abstractmethod
    def start(self) -> EmulatorBase:
        """Start serving; returns ``self``. Idempotent."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""

    def __enter__(self) -> EmulatorBase:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pinecone(**options: Any) -> Emulator:
    from .pinecone import PineconeEmulator

    return PineconeEmulator(**options)


def _weaviate(**options: Any) -> Emulator:
    from .weaviate import WeaviateEmulator

    return WeaviateEmulator(**options)


#: Emulator kinds -> factories (keyword options -> an unstarted emulator).
EMULATORS: dict[str, Callable[..., Emulator]] = {"pinecone": _pinecone, "weaviate": _weaviate}


def kinds() -> list[str]:
    """The emulator kinds, sorted."""
    return sorted(EMULATORS)


def create(kind: str, **options: Any) -> Emulator:
    """An unstarted emulator of ``kind`` built with ``options``. ``InvalidArgument`` for
    a kind not in :data:`EMULATORS`."""
    factory = EMULATORS.get(kind)
    if factory is None:
        raise InvalidArgument("kind", kind, "one of " + ", ".join(kinds()))
    return factory(**options)
