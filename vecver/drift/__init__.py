"""Drift detection: when a space's vectors, its index or its queries have moved enough
that a migration (or a rebuild) is due.

- :func:`check` — every signal of one space (MMD with a permutation p-value, mean and
  centroid shift, canary recall against exact search, query-to-top-result distance),
  each with its threshold, status and the recommended action; recorded in the manifest.
- :mod:`vecver.drift.stats` — the statistics alone, on two samples of vectors.
- :mod:`vecver.drift.reservoir` — the reference samples, captured from the write path.
- :mod:`vecver.drift.observer` — query distances recorded from the read path.
- :mod:`vecver.drift.metrics` — the latest results as Prometheus metric families.

The heavy parts are imported on first use, so that the write path's hook imports only
the reservoir.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .stats import CentroidResult, MMDResult, centroid_drift, mmd_test

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ._check import DriftReport

__all__ = ["CentroidResult", "DriftReport", "MMDResult", "Signal", "centroid_drift", "check",
           "latest_results", "mmd_test", "save_reference"]

#: names served from the heavy module on first use (see ``__getattr__``)
_LAZY = ("DriftReport", "Signal", "latest_results")


def __getattr__(name: str) -> Any:
    """``DriftReport``, ``Signal`` and ``latest_results``, imported on first use."""
    if name in _LAZY:
        from . import _check

        return getattr(_check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check(
    ws: Workspace,
    collection: str,
    space: str | None = None,
    reference: str | None = None,
    *,
    recall: bool = True,
    record: bool = True,
) -> DriftReport:
    """Check a space of ``collection`` for drift; see :func:`vecver.drift._check.check`
    for the contract (signals, references, errors)."""
    from ._check import check as _check

    return _check(ws, collection, space, reference, recall=recall, record=record)


def save_reference(ws: Workspace, collection: str, name: str, *,
                   space: str | None = None) -> dict[str, Any]:
    """Save the space's reservoir sample as a named reference; see
    :func:`vecver.drift._check.save_reference`."""
    from ._check import save_reference as _save

    return _save(ws, collection, name, space=space)
