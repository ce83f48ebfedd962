"""A fault-injecting wrapper around any backend, for tests of failure paths.

:class:`FaultyBackend` *is* a :class:`~vecver.backends.base.Backend` that delegates every
call to an inner backend (any backend: the in-memory reference, the local backend, a
database client) and can be told to misbehave:

- **fail** the nth call of an operation (or every call, or a run of calls), optionally only
  on namespaces matching a name or a substring, with a transient
  (:class:`~vecver.errors.TransientBackendError`), a permanent
  (:class:`~vecver.errors.BackendError`) or any given error — before the inner call (the
  write did not happen) or after it (the write landed but the caller saw a failure, as when
  a response is lost);
- run **hooks** before or after an operation (tests use them to interleave another writer
  at an exact moment);
- **lag** its reads: writes become visible to ``fetch``, ``scan``, ``count`` and ``search``
  only after a delay or after a number of reads, like an eventually consistent database.
  The wrapper then declares ``consistency="eventual"``, so the base class's
  read-your-writes handling waits for each write (or raises
  :class:`~vecver.errors.WriteNotVisible` when the lag is longer than the declared
  ``visibility_timeout``).

Operations are counted where the base class calls the backend, that is after validation
and chunking: one ``upsert`` longer than ``max_batch`` is several ``upsert`` calls here,
and the base's visibility polls of an eventual backend are ``fetch`` calls. Bad input is
refused by the base before any of this, as on a real backend.

Example::

    inner = MemoryBackend()
    faulty = FaultyBackend(inner)
    faulty.fail("upsert", nth=2, namespace_contains="__v2_")      # transient, once
    faulty.fail("delete", every=True, error="permanent")
    faulty.before("fetch", lambda call: other_writer())            # interleave a writer
    lagging = FaultyBackend(MemoryBackend(), lag_reads=3, visibility_timeout=1.0)
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..backends.base import Backend
from ..backends.capabilities import Capabilities
from ..backends.external import ExternalCollection, Key, Layout, RawPoint
from ..errors import BackendError, NamespaceExists, NamespaceNotFound, TransientBackendError
from ..filters import Filter
from ..types import Hit, Matrix, NamespaceSpec, Record, ScanPage

__all__ = ["Call", "Fault", "FaultyBackend", "OPS", "InjectedFault"]

#: The operations a fault or hook can name (the public names of the Backend methods).
OPS: tuple[str, ...] = (
    "create_namespace", "describe_namespace", "list_namespaces", "drop_namespace",
    "upsert", "delete", "fetch", "scan", "search", "count",
    "set_alias", "get_alias", "drop_alias",
)  # fmt: skip
_READS = frozenset({"fetch", "scan", "search", "count"})

ErrorSpec = Literal["transient", "permanent"] | BaseException | Callable[["Call"], BaseException]


class InjectedFault(BackendError):
    """The permanent error a :class:`Fault` raises by default."""


class InjectedTransientFault(TransientBackendError):
    """The transient error a :class:`Fault` raises by default."""


@dataclass(frozen=True)
class Call:
    """One call that reached the wrapper: the operation, its namespace (None for
    ``list_namespaces``), its number among the calls of that operation (1-based) and its
    arguments as the base passed them."""

    op: str
    namespace: str | None
    number: int
    args: tuple[Any, ...] = ()


@dataclass
class Fault:
    """One rule of failure; see :meth:`FaultyBackend.fail`. ``matched`` counts the calls it
    matched so far, ``fired`` the failures it raised."""

    op: str | None
    nth: int
    times: int | None
    error: ErrorSpec
    namespace: str | None = None
    namespace_contains: str | None = None
    after_call: bool = False
    matched: int = 0
    fired: int = 0

    def matches(self, call: Call) -> bool:
        if self.op is not None and self.op != call.op:
            return False
        if self.namespace is not None and call.namespace != self.namespace:
            return False
        contains = self.namespace_contains
        return contains is None or (call.namespace is not None and contains in call.namespace)

    def should_fire(self) -> bool:
        """Count one matching call; True when this one fails."""
        self.matched += 1
        if self.matched < self.nth:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def make_error(self, call: Call) -> BaseException:
        where = f" on {call.namespace!r}" if call.namespace else ""
        what = f"injected fault: {call.op} #{call.number}{where}"
        if self.error == "transient":
            return InjectedTransientFault(what)
        if self.error == "permanent":
            return InjectedFault(what)
        if isinstance(self.error, BaseException):
            return self.error
        return self.error(call)


@dataclass
class _Pending:
    """A write not yet visible to reads (read-lag mode)."""

    op: str
    namespace: str
    payload: Any
    due_at: float
    reads_left: int


Hook = Callable[[Call], object]
AfterHook = Callable[[Call, object], object]


@dataclass
class _Hooks:
    before: dict[str, list[Hook]] = field(default_factory=lambda: collections.defaultdict(list))
    after: dict[str, list[AfterHook]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )


class FaultyBackend(Backend):
    """A delegating, fault-injecting wrapper around ``inner`` (see the module docstring).

    It has ``inner``'s capabilities (``capabilities`` replaces them), except that a read
    lag (``lag_reads`` or ``lag_seconds``) declares ``consistency="eventual"`` with
    ``visibility_timeout``. It uses ``inner``'s naming rule and score convention. Closing
    it makes every pending (lagging) write visible, then closes ``inner`` unless
    ``close_inner=False``. ``calls`` counts the calls per operation.
    """

    name = "faulty"

    def __init__(
        self,
        inner: Backend,
        *,
        capabilities: Capabilities | None = None,
        lag_reads: int = 0,
        lag_seconds: float = 0.0,
        visibility_timeout: float | None = None,
        close_inner: bool = True,
    ) -> None:
        super().__init__()
        if lag_reads < 0 or lag_seconds < 0:
            raise ValueError("lag_reads and lag_seconds must be >= 0")
        self.inner = inner
        caps = capabilities or inner.capabilities
        self._lag_reads = int(lag_reads)
        self._lag_seconds = float(lag_seconds)
        if self._lag_reads or self._lag_seconds:
            caps = dataclasses.replace(
                caps,
                consistency="eventual",
                visibility_timeout=visibility_timeout or caps.visibility_timeout,
            )
        elif visibility_timeout is not None:
            caps = dataclasses.replace(caps, visibility_timeout=visibility_timeout)
        self.capabilities = caps  # type: ignore[misc]
        self.name = f"faulty-{inner.name}"  # type: ignore[misc]
        # the inner backend's knowledge of its database
        for attr in ("physical_name", "check_namespace_name", "score_from_distance"):
            setattr(self, attr, getattr(inner, attr))
        self._close_inner = close_inner
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._hooks = _Hooks()
        self._pending: collections.deque[_Pending] = collections.deque()
        self.calls: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"FaultyBackend({self.inner!r})"

    # -- configuring faults -----------------------------------------------------------

    def fail(
        self,
        op: str | None,
        *,
        nth: int = 1,
        times: int | None = 1,
        every: bool = False,
        error: ErrorSpec = "transient",
        namespace: str | None = None,
        namespace_contains: str | None = None,
        after_call: bool = False,
    ) -> Fault:
        """Make calls of ``op`` (None: any operation) fail: the ``nth`` matching call and the
        ``times - 1`` after it (``every=True``: every matching call from the ``nth`` on).
        ``error`` is ``"transient"``, ``"permanent"``, an exception instance, or a function
        of the :class:`Call` returning one. With ``after_call`` the inner call runs first
        (a write lands) and the error is raised afterwards. Returns the rule (its counters
        say what it did); :meth:`clear_faults` removes every rule."""
        if op is not None and op not in OPS:
            raise ValueError(f"unknown operation {op!r}; one of {', '.join(OPS)}")
        if nth < 1:
            raise ValueError("nth counts from 1")
        fault = Fault(
            op,
            nth,
            None if every else times,
            error,
            namespace=namespace,
            namespace_contains=namespace_contains,
            after_call=after_call,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault rule (hooks and lag stay)."""
        with self._lock:
            self._faults.clear()

    def before(self, op: str, hook: Hook) -> None:
        """Run ``hook(call)`` before each call of ``op`` reaches the inner backend (after
        the faults that fire before the call). A hook that raises fails the call."""
        self._check_op(op)
        self._hooks.before[op].append(hook)

    def after(self, op: str, hook: AfterHook) -> None:
        """Run ``hook(call, result)`` after each successful call of ``op``."""
        self._check_op(op)
        self._hooks.after[op].append(hook)

    def clear_hooks(self) -> None:
        self._hooks = _Hooks()

    @staticmethod
    def _check_op(op: str) -> None:
        if op not in OPS:
            raise ValueError(f"unknown operation {op!r}; one of {', '.join(OPS)}")

    @property
    def pending_writes(self) -> int:
        """Writes accepted but not yet visible to reads (read-lag mode)."""
        with self._lock:
            return len(self._pending)

    def settle(self) -> None:
        """Make every pending write visible now."""
        with self._lock:
            while self._pending:
                self._apply(self._pending.popleft())

    # -- the call path ----------------------------------------------------------------

    def _call(self, op: str, namespace: str | None, args: tuple[Any, ...],
              fn: Callable[[], Any]) -> Any:
        with self._lock:
            self.calls[op] += 1
            call = Call(op, namespace, self.calls[op], args)
            firing = [f for f in self._faults if f.matches(call) and f.should_fire()]
        for f in firing:
            if not f.after_call:
                raise f.make_error(call)
        for hook in list(self._hooks.before.get(op, ())):
            hook(call)
        if op in _READS:
            self._tick()
        result = fn()
        for f in firing:
            if f.after_call:
                raise f.make_error(call)
        for after in list(self._hooks.after.get(op, ())):
            after(call, result)
        return result

    # -- read lag ---------------------------------------------------------------------

    def _lagging(self) -> bool:
        return bool(self._lag_reads or self._lag_seconds)

    def _write(self, op: str, namespace: str, payload: Any) -> None:
        if not self._lagging():
            if op == "upsert":
                self.inner.upsert(namespace, payload)
            else:
                self.inner.delete(namespace, payload)
            return
        with self._lock:
            self.inner.describe_namespace(namespace)  # NamespaceNotFound as a real one
            self._pending.append(
                _Pending(op, namespace, payload, time.monotonic() + self._lag_seconds,
                         self._lag_reads)
            )

    def _tick(self) -> None:
        """One read happened: apply, in order, the pending writes that are due."""
        if not self._lagging():
            return
        with self._lock:
            now = time.monotonic()
            for p in self._pending:
                p.reads_left -= 1
            while self._pending and self._pending[0].reads_left <= 0 and (
                self._pending[0].due_at <= now
            ):
                self._apply(self._pending.popleft())

    def _apply(self, p: _Pending) -> None:
        try:
            if p.op == "upsert":
                self.inner.upsert(p.namespace, p.payload)
            else:
                self.inner.delete(p.namespace, p.payload)
        except NamespaceNotFound:
            pass  # dropped while the write was in flight: it is gone with the namespace

    def _forget_pending(self, namespace: str) -> None:
        with self._lock:
            self._pending = collections.deque(p for p in self._pending if p.namespace != namespace)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self.inner.closed:
                self.settle()
        finally:
            super().close()
            if self._close_inner:
                self.inner.close()

    # -- the backend ------------------------------------------------------------------

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        def run() -> NamespaceSpec:
            with contextlib.suppress(NamespaceExists):
                self.inner.create_namespace(spec)
            return self.inner.describe_namespace(spec.name)

        out: NamespaceSpec = self._call("create_namespace", spec.name, (spec,), run)
        return out

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        out: NamespaceSpec = self._call(
            "describe_namespace", name, (), lambda: self.inner.describe_namespace(name)
        )
        return out

    def _list_namespaces(self) -> list[str]:
        out: list[str] = self._call("list_namespaces", None, (), self.inner.list_namespaces)
        return out

    def _drop_namespace(self, name: str) -> None:
        def run() -> None:
            self._forget_pending(name)
            self.inner.drop_namespace(name)

        self._call("drop_namespace", name, (), run)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        batch = [dataclasses.replace(r, vector=v.copy(), metadata=dict(r.metadata))
                 for r, v in zip(records, vectors, strict=True)]  # fmt: skip
        self._call("upsert", namespace, (batch,), lambda: self._write("upsert", namespace, batch))

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        idl = list(ids)
        self._call("delete", namespace, (idl,), lambda: self._write("delete", namespace, idl))

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        out: dict[str, Record] = self._call(
            "fetch", namespace, (list(ids), with_vectors),
            lambda: self.inner.fetch(namespace, ids, with_vectors=with_vectors),
        )  # fmt: skip
        return out

    def _scan(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        out: ScanPage = self._call(
            "scan", namespace, (cursor, limit, with_vectors),
            lambda: self.inner.scan(namespace, cursor=cursor, limit=limit,
                                    with_vectors=with_vectors),
        )  # fmt: skip
        return out

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        out: list[list[Hit]] = self._call(
            "search", namespace, (queries, k, flt),
            lambda: self.inner.search(namespace, queries, k, filter=flt),
        )  # fmt: skip
        return out

    def _count(self, namespace: str) -> int:
        out: int = self._call("count", namespace, (), lambda: self.inner.count(namespace))
        return out

    def _storage_estimate(self, namespace: str) -> int:
        return self.inner.storage_estimate(namespace)

    def _set_alias(self, alias: str, namespace: str) -> None:
        self._call("set_alias", namespace, (alias,),
                   lambda: self.inner.set_alias(alias, namespace))  # fmt: skip

    def _get_alias(self, alias: str) -> str | None:
        out: str | None = self._call("get_alias", None, (alias,),
                                     lambda: self.inner.get_alias(alias))  # fmt: skip
        return out

    def _drop_alias(self, alias: str) -> None:
        self._call("drop_alias", None, (alias,), lambda: self.inner.drop_alias(alias))

    # -- adopted collections: the inner backend's raw hooks, under the same faults --------
    # (their faults and hooks are those of the operation they serve: a put is an
    # "upsert", a get or find a "fetch"; writes to an adopted collection are never lagged)

    def _describe_external(self, name: str) -> ExternalCollection:
        out: ExternalCollection = self._call(
            "describe_namespace", name, (), lambda: self.inner._describe_external(name)
        )
        return out

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        out: tuple[list[RawPoint], str | None] = self._call(
            "scan", layout.name, (cursor, limit, with_vectors),
            lambda: self.inner._scan_external(layout, cursor, limit, with_vectors),
        )  # fmt: skip
        return out

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        out: list[RawPoint] = self._call(
            "fetch", layout.name, (list(keys), with_vectors),
            lambda: self.inner._get_external(layout, keys, with_vectors),
        )  # fmt: skip
        return out

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        out: list[RawPoint] = self._call(
            "fetch", layout.name, (field, list(values), with_vectors),
            lambda: self.inner._find_external(layout, field, values, with_vectors),
        )  # fmt: skip
        return out

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        self._call("upsert", layout.name, (list(points),),
                   lambda: self.inner._put_external(layout, points))  # fmt: skip

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        self._call("delete", layout.name, (list(keys),),
                   lambda: self.inner._delete_external(layout, keys))  # fmt: skip

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        out: list[list[tuple[RawPoint, float]]] = self._call(
            "search", layout.name, (queries, k, flt),
            lambda: self.inner._search_external(layout, queries, k, flt),
        )  # fmt: skip
        return out

    def _count_external(self, layout: Layout) -> int:
        out: int = self._call("count", layout.name, (),
                              lambda: self.inner._count_external(layout))  # fmt: skip
        return out
