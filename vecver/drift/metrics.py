"""Drift results as metrics: the newest recorded check of every space, and the size of
its reference sample, read from the manifest at each call (another process's checks
included).

- :func:`samples` — plain ``(name, labels, value)`` triples (no dependency);
- :func:`metric_families` — the same as prometheus-client metric families, for a
  collector to yield (``vecver.read.metrics`` can add them to its exposition);
- :class:`DriftCollector` / :func:`register` — a collector of its own for a
  ``prometheus_client.CollectorRegistry``.

Metrics (labels ``collection``, ``space``; ``signal`` where named):
``vecver_drift_signal`` (the signal's value: MMD p-value, relative shifts, recall drop,
relative query-distance rise), ``vecver_drift_threshold``, ``vecver_drift_alarm`` (1 when
the signal alarmed), ``vecver_drift_drifted`` (1 when any did),
``vecver_drift_checked_timestamp_seconds``, and ``vecver_drift_reservoir_vectors``
(label ``part``: ``sample``, ``recent``, ``seen``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import reservoir as _reservoir

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace

Sample = tuple[str, dict[str, str], float]

_HELP = {
    "vecver_drift_signal": "Value of a drift signal at the newest check",
    "vecver_drift_threshold": "Threshold of a drift signal",
    "vecver_drift_alarm": "1 when the drift signal alarmed at the newest check",
    "vecver_drift_drifted": "1 when any drift signal alarmed at the newest check",
    "vecver_drift_checked_timestamp_seconds": "When the newest drift check ran",
    "vecver_drift_reservoir_vectors": "Vectors in the drift reference reservoir",
}


def samples(ws: Workspace, collections: Iterable[str] | None = None) -> list[Sample]:
    """Every drift metric as ``(name, labels, value)``, for ``collections`` (default:
    all). Signals without a value (skipped, insufficient) give no ``vecver_drift_signal``
    sample."""
    from ._check import latest_results

    wanted = None if collections is None else set(collections)
    out: list[Sample] = []
    for r in latest_results(ws):
        c, sp = str(r["collection"]), str(r["space"])
        if wanted is not None and c not in wanted:
            continue
        base = {"collection": c, "space": sp}
        for name, sig in dict(r.get("signals", {})).items():
            lab = {**base, "signal": str(name)}
            if sig.get("value") is not None:
                out.append(("vecver_drift_signal", lab, float(sig["value"])))
            out.append(("vecver_drift_threshold", lab, float(sig["threshold"])))
            out.append(("vecver_drift_alarm", lab, 1.0 if sig["status"] == "alarm" else 0.0))
        out.append(("vecver_drift_drifted", base, 1.0 if r.get("drifted") else 0.0))
        out.append(("vecver_drift_checked_timestamp_seconds", base, float(r.get("at", 0.0))))
    for a in ws.manifest.artifacts(_reservoir.KIND):
        if wanted is not None and a.collection not in wanted:
            continue
        if a.version != _newest_version(ws, a.collection, a.name):
            continue
        base = {"collection": a.collection, "space": a.name}
        seen = int(a.meta.get("seen", 0))
        out.append(("vecver_drift_reservoir_vectors", {**base, "part": "sample"},
                    float(min(seen, int(a.meta.get("capacity", 0))))))
        out.append(("vecver_drift_reservoir_vectors", {**base, "part": "recent"},
                    float(min(seen, int(a.meta.get("window", 0))))))
        out.append(("vecver_drift_reservoir_vectors", {**base, "part": "seen"}, float(seen)))
    return out


def _newest_version(ws: Workspace, collection: str, name: str) -> int:
    art = ws.manifest.artifact(_reservoir.KIND, collection, name)
    return art.version if art is not None else -1


def metric_families(ws: Workspace, collections: Iterable[str] | None = None) -> list[Any]:
    """The drift metrics as prometheus-client gauge families (see the module docstring).
    Raises ``MetricsNotInstalled`` without prometheus-client."""
    try:
        from prometheus_client.core import GaugeMetricFamily
    except ImportError:
        from ..errors import MetricsNotInstalled

        raise MetricsNotInstalled() from None
    families: dict[str, Any] = {}
    for name, labels, value in samples(ws, collections):
        fam = families.get(name)
        if fam is None:
            fam = GaugeMetricFamily(name, _HELP[name], labels=list(labels))
            families[name] = fam
        fam.add_metric(list(labels.values()), value)
    return list(families.values())


class DriftCollector:
    """A prometheus-client collector of the drift metrics, read at every scrape."""

    def __init__(self, ws: Workspace, collections: Iterable[str] | None = None) -> None:
        self.ws = ws
        self.collections = None if collections is None else list(collections)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from metric_families(self.ws, self.collections)


def register(registry: Any, ws: Workspace, collections: Iterable[str] | None = None
             ) -> DriftCollector:
    """Register a :class:`DriftCollector` on a ``prometheus_client.CollectorRegistry``."""
    c = DriftCollector(ws, collections)
    registry.register(c)
    return c
