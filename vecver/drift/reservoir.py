"""Reference samples captured from the write path: a bounded reservoir per space.

Every vector written into a collection's space (by ``upsert`` and by the backfill) is
offered to that space's :class:`Reservoir`, which keeps

- ``sample``: a uniform random sample of at most ``capacity`` of all vectors ever offered
  (reservoir sampling, Algorithm L: after the reservoir is full, the number of vectors to
  skip before the next one is kept is drawn at once, so a write that keeps nothing costs a
  comparison of two integers; early in the stream, when one write keeps many vectors,
  Algorithm R decides them at once, vectorised), each with its stream position and write
  time;
- ``recent``: the last ``window`` vectors offered (a ring buffer), the "recent" side of a
  drift check.

Both are bounded (``capacity`` + ``window`` vectors), seeded (the generator's state is
persisted with them, so a restarted process continues the same stream of decisions), and
persisted in the manifest as the artifact ``("drift.reservoir", collection, space
label)`` (vectors as float16) — in batches: after ``flush_every`` offered vectors or
``flush_seconds`` since the last flush (checked at a write), on :func:`flush_all`, when
the workspace object is dropped, and at interpreter exit; never per write. Only the two
newest versions are kept. A crash (kill -9) loses at most the vectors offered since the
last flush: the stored sample stays a uniform sample of the vectors it recorded. A space
with no stored sample (written before sampling existed, or adopted) gets one from a scan
of its namespace (:func:`seed_from_namespace`) at its first drift check.

Several writer processes: each flush re-reads the stored version; when another process
flushed meanwhile, the two samples are merged (each slot drawn from either side in
proportion to the vectors that side saw since their common state), so the stored sample
stays approximately uniform over all writers' vectors.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ManifestReadOnly
from ..types import Record

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import ManifestStore

log = logging.getLogger("vecver")

KIND = "drift.reservoir"
#: artifact format version of the blob and meta
FORMAT = 1

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SampleView:
    """A copy of a reservoir's state: the uniform ``sample`` (rows) with each row's
    stream position ``seq`` and write time ``at``; the ``recent`` window likewise, oldest
    first; ``seen``: vectors offered so far; ``fingerprint``: the space's."""

    fingerprint: str
    dimension: int
    seen: int
    sample: F32
    sample_seq: I64
    sample_at: F64
    recent: F32
    recent_seq: I64
    recent_at: F64


class Reservoir:
    """The bounded sample of one space of one collection (see the module docstring).

    Thread-safe. :meth:`offer` never raises for a vector the write path accepted;
    vectors of another dimension than the first are ignored (a space has one)."""

    def __init__(self, fingerprint: str, dimension: int, *, capacity: int, window: int,
                 seed: int = 0) -> None:
        self.fingerprint = fingerprint
        self.dimension = dimension
        self.capacity = capacity
        self.window = window
        self.lock = threading.Lock()
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.sample = np.zeros((capacity, dimension), dtype=np.float32)
        self.sample_seq = np.full(capacity, -1, dtype=np.int64)
        self.sample_at = np.zeros(capacity, dtype=np.float64)
        self.recent = np.zeros((window, dimension), dtype=np.float32)
        self.recent_seq = np.full(window, -1, dtype=np.int64)
        self.recent_at = np.zeros(window, dtype=np.float64)
        # Algorithm L: the stream position of the next vector kept once full, and W
        self.w = 1.0
        self.next_keep = capacity
        self._draw_w()
        self._skip(capacity - 1)
        # persistence bookkeeping
        self.pending = 0
        self.flushed_at = time.monotonic()
        self.base_seen = 0  # ``seen`` of the stored version this state continues
        self.base_version = 0

    # -- Algorithm L ----------------------------------------------------------------

    def _draw_w(self) -> None:
        self.w *= math.exp(math.log(max(self.rng.random(), 1e-300)) / self.capacity)

    def _skip(self, last: int) -> None:
        """Set ``next_keep`` after keeping position ``last``."""
        u = max(self.rng.random(), 1e-300)
        denom = math.log1p(-self.w) if self.w < 1.0 else -math.inf
        gap = math.floor(math.log(u) / denom) if denom != 0.0 else 0
        self.next_keep = last + 1 + int(min(gap, 2**62))

    def offer(self, vectors: F32, now: float | None = None) -> None:
        """Offer the rows of ``vectors`` (one write's, in order) to the sample and the
        recent window."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension or not vectors.shape[0]:
            return
        t = time.time() if now is None else now
        b = vectors.shape[0]
        with self.lock:
            start = self.seen
            # fill phase
            fill = max(0, min(self.capacity - start, b))
            if fill:
                self.sample[start : start + fill] = vectors[:fill]
                self.sample_seq[start : start + fill] = np.arange(start, start + fill)
                self.sample_at[start : start + fill] = t
            end = start + b
            if fill < b and (b - fill) * self.capacity > 16 * max(start + fill, 1):
                # many vectors of this batch will be kept (early in the stream): decide
                # them at once with Algorithm R, then restart Algorithm L's skips from
                # the distribution W has after ``end`` vectors (Beta(C, end - C + 1))
                self._offer_r(vectors, start + fill, end, t)
                self.w = float(self.rng.beta(self.capacity, end - self.capacity + 1))
                self._skip(end - 1)
            while self.next_keep < end:
                pos = self.next_keep
                slot = int(self.rng.integers(self.capacity))
                self.sample[slot] = vectors[pos - start]
                self.sample_seq[slot] = pos
                self.sample_at[slot] = t
                self._draw_w()
                self._skip(pos)
            # ring buffer of the last ``window``
            take = vectors[-self.window:]
            first = end - take.shape[0]
            idx = np.arange(first, end) % self.window
            self.recent[idx] = take
            self.recent_seq[idx] = np.arange(first, end)
            self.recent_at[idx] = t
            self.seen = end
            self.pending += b

    def _offer_r(self, vectors: F32, first: int, end: int, t: float) -> None:
        """Algorithm R for stream positions ``first..end-1`` (all past the fill): position
        p is kept with probability C/(p+1), in a uniformly drawn slot; of several kept
        into one slot, the last wins (as sequentially)."""
        start = end - vectors.shape[0]
        pos = np.arange(first, end)
        keep = pos[self.rng.random(pos.size) * (pos + 1) < self.capacity]
        if not keep.size:
            return
        slots = self.rng.integers(0, self.capacity, keep.size)
        # the last write to each slot wins: keep the last occurrence of every slot
        _, last = np.unique(slots[::-1], return_index=True)
        chosen = keep.size - 1 - last
        self.sample[slots[chosen]] = vectors[keep[chosen] - start]
        self.sample_seq[slots[chosen]] = keep[chosen]
        self.sample_at[slots[chosen]] = t

    def view(self) -> SampleView:
        """A consistent copy of the state (ordered by stream position)."""
        with self.lock:
            return self._view()

    def _view(self) -> SampleView:
        keep = self.sample_seq >= 0
        s_order = np.argsort(self.sample_seq[keep], kind="stable")
        rkeep = self.recent_seq >= 0
        r_order = np.argsort(self.recent_seq[rkeep], kind="stable")
        return SampleView(
            self.fingerprint, self.dimension, self.seen,
            self.sample[keep][s_order].copy(), self.sample_seq[keep][s_order].copy(),
            self.sample_at[keep][s_order].copy(),
            self.recent[rkeep][r_order].copy(), self.recent_seq[rkeep][r_order].copy(),
            self.recent_at[rkeep][r_order].copy(),
        )

    # -- persistence ----------------------------------------------------------------

    def to_artifact(self) -> tuple[bytes, dict[str, Any]]:
        """The blob (an ``.npz``) and the JSON meta of the current state."""
        with self.lock:
            buf = io.BytesIO()
            # vectors as float16: half the bytes per flush, and a sample's statistics do
            # not need more than 3 significant digits
            # (float32 when a value is beyond float16's range)
            big = max(float(np.abs(self.sample).max(initial=0.0)),
                      float(np.abs(self.recent).max(initial=0.0))) > 6e4
            dt = np.float32 if big else np.float16
            np.savez(buf, sample=self.sample.astype(dt), sample_seq=self.sample_seq,
                     sample_at=self.sample_at, recent=self.recent.astype(dt),
                     recent_seq=self.recent_seq, recent_at=self.recent_at)
            meta = {
                "format": FORMAT, "fingerprint": self.fingerprint,
                "dimension": self.dimension, "capacity": self.capacity,
                "window": self.window, "seen": self.seen, "w": self.w,
                "next_keep": self.next_keep, "rng": _rng_state(self.rng),
                "filled": int(min(self.seen, self.capacity)), "saved_at": time.time(),
            }
            return buf.getvalue(), meta

    @staticmethod
    def from_artifact(data: bytes, meta: dict[str, Any], *, capacity: int, window: int
                      ) -> Reservoir:
        """The state stored by :meth:`to_artifact`, resized to ``capacity``/``window``
        when the configuration changed (a smaller reservoir keeps a uniform subset)."""
        arrays = np.load(io.BytesIO(data))
        r = Reservoir(str(meta["fingerprint"]), int(meta["dimension"]),
                      capacity=int(meta["capacity"]), window=int(meta["window"]))
        r.sample[:] = arrays["sample"].astype(np.float32)
        r.sample_seq[:] = arrays["sample_seq"]
        r.sample_at[:] = arrays["sample_at"]
        r.recent[:] = arrays["recent"].astype(np.float32)
        r.recent_seq[:] = arrays["recent_seq"]
        r.recent_at[:] = arrays["recent_at"]
        r.seen = int(meta["seen"])
        r.w = float(meta["w"])
        r.next_keep = int(meta["next_keep"])
        r.rng.bit_generator.state = meta["rng"]
        r.base_seen = r.seen
        if capacity != r.capacity or window != r.window:
            r = r._resized(capacity, window)
        return r

    def _resized(self, capacity: int, window: int) -> Reservoir:
        v = self._view()
        out = Reservoir(self.fingerprint, self.dimension, capacity=capacity, window=window,
                        seed=int(self.rng.integers(2**31)))
        n = v.sample.shape[0]
        if n > capacity:
            pick = np.sort(out.rng.choice(n, size=capacity, replace=False))
        else:
            pick = np.arange(n)
        out.sample[: pick.size] = v.sample[pick]
        out.sample_seq[: pick.size] = v.sample_seq[pick]
        out.sample_at[: pick.size] = v.sample_at[pick]
        keep = min(window, v.recent.shape[0])
        if keep:
            idx = v.recent_seq[-keep:] % window
            out.recent[idx] = v.recent[-keep:]
            out.recent_seq[idx] = v.recent_seq[-keep:]
            out.recent_at[idx] = v.recent_at[-keep:]
        out.seen = self.seen
        out.base_seen = self.base_seen
        out.base_version = self.base_version
        if self.seen >= capacity:
            out.w = 1.0
            out._draw_w()
            out._skip(self.seen - 1)
        else:
            out.next_keep = capacity
        return out

    def merge_from(self, other: Reservoir) -> None:
        """Merge the state ``other`` another process stored since this one's base: each
        sample slot is taken from either side in proportion to the vectors that side saw
        since the common base; the recent window keeps the newest rows of both."""
        with self.lock:
            mine, theirs = self._view(), other.view()
            new_mine = max(self.seen - self.base_seen, 0)
            new_theirs = max(other.seen - self.base_seen, 0)
            total = new_mine + new_theirs
            cap = self.capacity
            take_theirs = (int(self.rng.binomial(cap, new_theirs / total)) if total else 0)
            a_idx = self.rng.permutation(mine.sample.shape[0])
            b_idx = self.rng.permutation(theirs.sample.shape[0])
            nb = min(take_theirs, b_idx.size)
            na = min(cap - nb, a_idx.size)
            rows = np.concatenate([mine.sample[a_idx[:na]], theirs.sample[b_idx[:nb]]])
            seq = np.concatenate([mine.sample_seq[a_idx[:na]],
                                  theirs.sample_seq[b_idx[:nb]] + new_mine])
            at = np.concatenate([mine.sample_at[a_idx[:na]], theirs.sample_at[b_idx[:nb]]])
            self.sample[:] = 0.0
            self.sample_seq[:] = -1
            self.sample[: rows.shape[0]] = rows
            self.sample_seq[: rows.shape[0]] = seq
            self.sample_at[: rows.shape[0]] = at
            rec = np.concatenate([mine.recent, theirs.recent])
            rec_at = np.concatenate([mine.recent_at, theirs.recent_at])
            order = np.argsort(rec_at, kind="stable")[-self.window:]
            self.seen = self.base_seen + total
            seqs = np.arange(self.seen - order.size, self.seen)
            self.recent[:] = 0.0
            self.recent_seq[:] = -1
            idx = seqs % self.window
            self.recent[idx] = rec[order]
            self.recent_seq[idx] = seqs
            self.recent_at[idx] = rec_at[order]
            self.w = 1.0
            if self.seen >= cap:
                self._draw_w()
                self._skip(self.seen - 1)
            else:
                self.next_keep = cap


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


# -- the per-workspace registry and the write-path hook -------------------------------


@dataclass(frozen=True)
class ReservoirSettings:
    """Sizes and flush policy (from ``[drift]``; see :class:`vecver.config.DriftSettings`)."""

    capacity: int = 2000
    window: int = 1000
    flush_every: int = 10_000
    flush_seconds: float = 60.0
    seed: int = 0
    enabled: bool = True


def settings_of(ws: Workspace) -> ReservoirSettings:
    """The reservoir settings of ``ws``'s config (defaults when it has no ``[drift]``)."""
    d = getattr(ws.config, "drift", None)
    if d is None:
        return ReservoirSettings()
    return ReservoirSettings(capacity=d.reservoir_size, window=d.window,
                             flush_every=d.flush_every, flush_seconds=d.flush_seconds,
                             seed=d.seed, enabled=d.sample_writes)


class Registry:
    """The reservoirs of one workspace, loaded from the manifest on first use."""

    def __init__(self, ws: Workspace) -> None:
        self.ws_ref = weakref.ref(ws)
        self.manifest: ManifestStore = ws.manifest
        self.settings = settings_of(ws)
        self.lock = threading.Lock()
        self.items: dict[tuple[str, str], Reservoir] = {}

    def get(self, collection: str, label: str, fingerprint: str, dimension: int) -> Reservoir:
        key = (collection, label)
        with self.lock:
            r = self.items.get(key)
            if r is None or r.fingerprint != fingerprint:
                r = self._load(collection, label, fingerprint, dimension)
                self.items[key] = r
            return r

    def _load(self, collection: str, label: str, fingerprint: str, dimension: int
              ) -> Reservoir:
        s = self.settings
        art = self.manifest.artifact(KIND, collection, label)
        if art is not None and art.meta.get("fingerprint") == fingerprint \
                and art.meta.get("format") == FORMAT:
            try:
                r = Reservoir.from_artifact(art.data, art.meta, capacity=s.capacity,
                                            window=s.window)
                r.base_version = art.version
                return r
            except (KeyError, ValueError, OSError) as e:  # a damaged blob: start over
                log.warning("drift reservoir of %s/%s unreadable (%s); starting a new one",
                            collection, label, e)
        seed = (s.seed * 1_000_003 + hash_label(collection, label)) % (2**63)
        return Reservoir(fingerprint, dimension, capacity=s.capacity, window=s.window,
                         seed=seed)

    def loaded(self) -> list[tuple[tuple[str, str], Reservoir]]:
        with self.lock:
            return list(self.items.items())

    def flush(self, collection: str | None = None, *, force: bool = True) -> int:
        """Persist the reservoirs with vectors not yet stored (of ``collection``, or all);
        with ``force=False`` only those due by the flush policy. Returns how many."""
        n = 0
        for (coll, label), r in self.loaded():
            if collection is not None and coll != collection:
                continue
            if r.pending and (force or self._due(r)):
                self._save(coll, label, r)
                n += 1
        return n

    def _due(self, r: Reservoir) -> bool:
        s = self.settings
        return (r.pending >= s.flush_every
                or time.monotonic() - r.flushed_at >= s.flush_seconds)

    def _save(self, collection: str, label: str, r: Reservoir) -> None:
        stored = self.manifest.artifact(KIND, collection, label)
        if (stored is not None and stored.version != r.base_version
                and stored.meta.get("fingerprint") == r.fingerprint
                and stored.meta.get("format") == FORMAT):
            other = Reservoir.from_artifact(stored.data, stored.meta, capacity=r.capacity,
                                            window=r.window)
            r.merge_from(other)
        data, meta = r.to_artifact()
        pending = r.pending
        art = self.manifest.put_artifact(KIND, collection, label, data, meta, keep=2)
        with r.lock:
            r.pending = max(0, r.pending - pending)
            r.flushed_at = time.monotonic()
            r.base_version = art.version
            r.base_seen = int(meta["seen"])

    def observe(self, collection: str, label: str, fingerprint: str,
                records: Sequence[Record]) -> None:
        vecs = [rec.vector for rec in records if rec.vector is not None]
        if not vecs:
            return
        m = np.asarray(np.stack(vecs), dtype=np.float32)
        r = self.get(collection, label, fingerprint, int(m.shape[1]))
        r.offer(m)
        if self._due(r):
            self._save(collection, label, r)


def hash_label(collection: str, label: str) -> int:
    import zlib

    return zlib.crc32(f"{collection}\x00{label}".encode())


_REGISTRIES: weakref.WeakKeyDictionary[Any, Registry] = weakref.WeakKeyDictionary()
_REG_LOCK = threading.Lock()


def registry(ws: Workspace) -> Registry:
    """The reservoir registry of ``ws`` (made on first use)."""
    with _REG_LOCK:
        reg = _REGISTRIES.get(ws)
        if reg is None or reg.manifest is not ws.manifest:
            reg = Registry(ws)
            _REGISTRIES[ws] = reg
            # a workspace dropped (or the interpreter leaving) with vectors not yet
            # stored: persist them then (the finalizer holds the registry, not ``ws``)
            weakref.finalize(ws, _final_flush, reg)
        return reg


def observe_written(ws: Workspace, collection: str, ns: Any, records: Sequence[Record]
                    ) -> None:
    """The write-path hook: offer the vectors of ``records``, just written to namespace
    ``ns`` (a manifest row) of ``collection``, to that space's reservoir. Never raises:
    a failure to sample or persist is logged as a warning and the write is unaffected."""
    try:
        reg = registry(ws)
        if not reg.settings.enabled or not records:
            return
        reg.observe(collection, ns.space_label, ns.fingerprint, records)
    except Exception:  # sampling must never fail a write
        log.warning("drift sampling of %s failed; the write itself succeeded", collection,
                    exc_info=True)


def flush_all(ws: Workspace, collection: str | None = None) -> int:
    """Persist every reservoir of ``ws`` that holds vectors not yet stored (a drift check
    calls it first). Returns how many were written."""
    with _REG_LOCK:
        reg = _REGISTRIES.get(ws)
    return reg.flush(collection) if reg is not None else 0


def stored_view(manifest: ManifestStore, collection: str, label: str) -> SampleView | None:
    """The stored reservoir of ``(collection, label)``, or None when none was stored."""
    art = manifest.artifact(KIND, collection, label)
    if art is None or art.meta.get("format") != FORMAT:
        return None
    r = Reservoir.from_artifact(art.data, art.meta, capacity=int(art.meta["capacity"]),
                                window=int(art.meta["window"]))
    return r.view()


def seed_from_namespace(ws: Workspace, collection: str, ns: Any, *,
                        page_size: int = 1024) -> SampleView | None:
    """Build and store the reservoir of a space that has none yet (a collection written
    before sampling existed, or adopted) from the vectors its namespace holds: one
    streaming scan, memory bounded by the reservoir (a uniform sample of the stored
    vectors, Algorithm R over the scan) plus the ``window`` most recently written (by
    their stamps' write time) as the recent window. The sample's vectors in that window
    are marked as such, so the reference and the recent sample stay disjoint; writes
    after it continue the stored state. Returns the view, or None when the namespace
    holds no vectors. Raises what the backend's scan raises."""
    import heapq

    reg = registry(ws)
    s = reg.settings
    be = ws.backend_for(ns)
    rng = np.random.default_rng((s.seed * 1_000_003 + hash_label(collection, ns.space_label))
                                % (2**63))
    cap, win = s.capacity, s.window
    rows: list[F32] = []
    at: list[float] = []
    newest: list[tuple[float, int, F32]] = []  # min-heap of the ``win`` newest writes
    seen = 0
    dim = 0
    cursor: str | None = None
    while True:
        page = be.scan(ns.name, cursor=cursor, limit=page_size, with_vectors=True)
        for rec in page.records:
            if rec.vector is None:
                continue
            v = np.asarray(rec.vector, dtype=np.float32)
            dim = v.shape[0]
            t = float(rec.stamp.written_at)
            if seen < cap:
                rows.append(v)
                at.append(t)
            else:
                j = int(rng.integers(seen + 1))
                if j < cap:
                    rows[j], at[j] = v, t
            item = (t, seen, v)
            if len(newest) < win:
                heapq.heappush(newest, item)
            elif item[:2] > newest[0][:2]:
                heapq.heapreplace(newest, item)
            seen += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if not seen:
        return None
    r = Reservoir(ns.fingerprint, dim, capacity=cap, window=win,
                  seed=int(rng.integers(2**31)))
    n = len(rows)
    cut = min(t for t, _, _ in newest) if len(newest) >= min(win, seen) else -math.inf
    r.sample[:n] = np.stack(rows)
    r.sample_at[:n] = at
    # stream positions: the window's writes are the last ``len(newest)``
    first_recent = seen - len(newest)
    in_window = np.asarray(at) >= cut
    r.sample_seq[:n] = np.where(in_window, seen - 1, 0)
    for k, (t, _, v) in enumerate(sorted(newest, key=lambda x: x[:2])):
        slot = (first_recent + k) % win
        r.recent[slot] = v
        r.recent_seq[slot] = first_recent + k
        r.recent_at[slot] = t
    r.seen = seen
    if seen >= cap:
        r.w = float(rng.beta(cap, seen - cap + 1))
        r._skip(seen - 1)
    r.pending = seen
    with reg.lock:
        reg.items[(collection, ns.space_label)] = r
    view = r.view()
    with contextlib.suppress(ManifestReadOnly):  # a read-only check uses it unstored
        reg.flush(collection)
    return view


def _final_flush(reg: Registry) -> None:
    """Persist what ``reg`` holds pending; when its workspace closed the manifest, reopen
    the store at the same path for the one flush (only if the file still exists)."""
    if not any(r.pending for _, r in reg.loaded()):
        return
    try:
        if getattr(reg.manifest, "_closed", False):
            if not os.path.exists(reg.manifest.path):
                return
            reopened: Any = type(reg.manifest)(reg.manifest.path)  # type: ignore[call-arg]
            try:
                reg.manifest = reopened
                reg.flush()
            finally:
                reopened.close()
        else:
            reg.flush()
    except Exception:
        log.debug("drift reservoir flush failed", exc_info=True)


@atexit.register
def _flush_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    """Persist what is pending at interpreter exit (see :func:`_final_flush`)."""
    for reg in list(_REGISTRIES.values()):
        _final_flush(reg)
