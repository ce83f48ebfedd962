"""Spaces and fingerprints.

A :class:`SpaceSpec` is what the user declares under ``[spaces.<label>]``. Resolving it
(:meth:`SpaceSpec.resolve`) pins the model revision — for a local model, a hash of its
weights files — and yields a :class:`Space` whose :attr:`Space.fingerprint` is a stable hash
of the fields that change geometry. The label, the model's path on disk and any other
cosmetic field are *not* part of the fingerprint: renaming a label or moving a model
directory never forces a re-embed; changing a prefix, the truncation, the normalization,
the metric, the dimension, the chunking version or the weights does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .types import METRICS, Metric

LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
FINGERPRINT_VERSION = 1


def check_label(label: str, what: str = "space label") -> str:
    if not isinstance(label, str) or not LABEL_RE.match(label):
        raise ConfigError(
            f"invalid {what} {label!r}",
            hint="use a letter, then letters, digits, '_', '-' or '.' (at most 63)",
        )
    return label


@dataclass(frozen=True)
class SpaceSpec:
    """A declared embedding space.

    ``embedder`` is the embedder kind (``sentence-transformers``, ``onnx-minilm``,
    ``hash``, or ``python:package.module:attribute``); ``model`` its model location (a
    directory or a package name, kind-specific); ``revision`` pins the model version when
    the embedder cannot compute one (an API model's dated version); ``options`` are passed
    to the embedder, and those listed in the embedder's ``geometry_options`` enter the
    fingerprint.
    """

    label: str
    embedder: str
    dimension: int
    metric: Metric = "cosine"
    normalize: bool = True
    model: str | None = None
    revision: str | None = None
    query_prefix: str = ""
    document_prefix: str = ""
    max_length: int | None = None
    chunking: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)
    derive: Mapping[str, Any] | None = None
    """A derived space (no model of its own): ``{"from": LABEL, "truncate": D}`` or
    ``{"from": LABEL, "adapter": FILE}``; the config adds ``"source"`` (the source space's
    spec) and the embedder ``derived`` (:mod:`vecver.embedders.derived`)."""

    def __post_init__(self) -> None:
        check_label(self.label)
        if not isinstance(self.embedder, str) or not self.embedder:
            raise ConfigError(f"space {self.label!r}: 'embedder' is required")
        if not isinstance(self.dimension, int) or isinstance(self.dimension, bool) or (
            self.dimension < 1
        ):
            raise ConfigError(f"space {self.label!r}: 'dimension' must be a positive integer")
        if self.metric not in METRICS:
            raise ConfigError(
                f"space {self.label!r}: unknown metric {self.metric!r}",
                hint="use one of " + ", ".join(METRICS),
            )
        if self.max_length is not None and (
            not isinstance(self.max_length, int) or self.max_length < 1
        ):
            raise ConfigError(f"space {self.label!r}: 'max_length' must be a positive integer")

    @staticmethod
    def from_mapping(label: str, data: Mapping[str, Any]) -> SpaceSpec:
        """Build from a config table; unknown keys are an error (typos must not pass)."""
        known = {
            "embedder", "dimension", "metric", "normalize", "model", "revision",
            "query_prefix", "document_prefix", "max_length", "chunking", "options",
            "derive",
        }
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"space {label!r}: unknown key(s) {', '.join(sorted(unknown))}",
                hint="known keys: " + ", ".join(sorted(known)),
            )
        derive = data.get("derive")
        if derive is not None and not isinstance(derive, Mapping):
            raise ConfigError(f"space {label!r}: 'derive' must be a table, e.g. "
                              "{from = \"v1\", truncate = 128}")
        if derive is None and ("embedder" not in data or "dimension" not in data):
            raise ConfigError(f"space {label!r} needs 'embedder' and 'dimension'")
        return SpaceSpec(
            label=label,
            embedder=str(data.get("embedder", "derived")),
            dimension=data.get("dimension", 1),
            metric=data.get("metric", "cosine"),
            normalize=bool(data.get("normalize", True)),
            model=data.get("model"),
            revision=data.get("revision"),
            query_prefix=str(data.get("query_prefix", "")),
            document_prefix=str(data.get("document_prefix", "")),
            max_length=data.get("max_length"),
            chunking=str(data.get("chunking", "none")),
            options=dict(data.get("options", {})),
            derive=None if derive is None else dict(derive),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "embedder": self.embedder,
            "dimension": self.dimension,
            "metric": self.metric,
            "normalize": self.normalize,
            "model": self.model,
            "revision": self.revision,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "max_length": self.max_length,
            "chunking": self.chunking,
            "options": dict(self.options),
        }
        if self.derive is not None:
            out["derive"] = dict(self.derive)
        return out

    def geometry(self, revision: str, geometry_options: Mapping[str, Any]) -> dict[str, Any]:
        """The fields that change geometry, as a canonical dict (the fingerprint's input)."""
        return {
            "v": FINGERPRINT_VERSION,
            "embedder": self.embedder,
            "revision": revision,
            "dimension": self.dimension,
            "metric": self.metric,
            "normalize": self.normalize,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "max_length": self.max_length,
            "chunking": self.chunking,
            "options": {k: geometry_options[k] for k in sorted(geometry_options)},
        }

    def resolve(self, revision: str, geometry_options: Mapping[str, Any] | None = None) -> Space:
        """Pin the revision and compute the fingerprint."""
        geo = self.geometry(revision, geometry_options or {})
        blob = json.dumps(geo, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        fp = hashlib.sha256(blob.encode("utf-8")).hexdigest()
        return Space(spec=self, revision=revision, fingerprint=fp, geometry=geo)


@dataclass(frozen=True)
class Space:
    """A resolved space: a spec with its pinned revision and fingerprint."""

    spec: SpaceSpec
    revision: str
    fingerprint: str
    geometry: Mapping[str, Any]

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def short(self) -> str:
        """The first 12 hex digits of the fingerprint, for humans."""
        return self.fingerprint[:12]
