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
    from .check import DriftReport

__all__ = ["CentroidResult", "MMDResult", "centroid_drift", "check", "mmd_test",
           "save_reference"]


def check(
    ws: Workspace,
    collection: str,
    space: str | None = None,
    reference: str | None = None,
    *,
    recall: bool = True,
    record: bool = True,
) -> DriftReport:
    """Check a space of ``collection`` for drift; see :func:`vecver.drift.check.check`
    for the contract (signals, references, errors)."""
    from .check import check as _check

    return _check(ws, collection, space, reference, recall=recall, record=record)


def save_reference(ws: Workspace, collection: str, name: str, *,
                   space: str | None = None) -> dict[str, Any]:
    """Save the space's reservoir sample as a named reference; see
    :func:`vecver.drift.check.save_reference`."""
    from .check import save_reference as _save

    return _save(ws, collection, name, space=space)
