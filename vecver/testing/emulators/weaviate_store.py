"""The state of the Weaviate emulator: collections (classes), their objects, aliases.

Transport-free: :mod:`.weaviate` (REST) and :mod:`.weaviate_grpc` (gRPC) translate wire
messages into calls on :class:`WeaviateState`. Every public method takes the state's lock,
so the emulator is safe to call from many server threads at once.

Behaviour follows Weaviate (1.32) as its REST schema and ``.proto`` files describe it:

- class names are capitalised on create and on lookup (``docs`` -> ``Docs``); a class name
  matches ``[A-Z][_0-9A-Za-z]*`` and an alias may not share a class's name;
- distances: ``cosine`` = 1 - cosine similarity (certainty = 1 - distance / 2), ``dot`` =
  minus the inner product, ``l2-squared`` = squared euclidean, ``manhattan``, ``hamming``;
  computed exactly in float32 over every object (no approximate index);
- named vectors: a class update (``PUT /schema/{class}``) may add one, never remove one
  (``missing config for vector``) nor change its vectorizer, index type or distance; an
  object holds any subset of the named vectors, and ``near_vector`` on a target vector
  ranks only the objects holding it (an unknown target is Weaviate's ``extract target
  vectors`` error); a merge (``PATCH``) replaces the given properties and vectors and
  keeps the others (a null property is removed);
- a vector whose length differs from its index's existing vectors is refused per
  object, as Weaviate does (in a merge: the 500 Weaviate's ``repo.merge`` answers);
- the cursor (``after``) iterates in UUID order, and cannot be combined with filters or a
  vector search.
"""

from __future__ import annotations

import bisect
import copy
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ApiError", "Obj", "WeaviateState", "normalize_class_name"]

_CLASS_RE = re.compile(r"[A-Z][_0-9A-Za-z]{0,254}")
_PROP_RE = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,230}")
_RESERVED_PROPS = frozenset({"_additional", "_id", "id"})
_DISTANCES = frozenset({"cosine", "dot", "l2-squared", "manhattan", "hamming"})
_DATA_TYPES = frozenset(
    {"text", "text[]", "int", "int[]", "number", "number[]", "boolean", "boolean[]",
     "date", "date[]", "uuid", "uuid[]", "object", "object[]", "blob"}
)  # fmt: skip


class ApiError(Exception):
    """An error the API reports: ``status`` is the HTTP status, ``grpc`` the gRPC code
    name, ``message`` what Weaviate would say."""

    def __init__(self, status: int, message: str, grpc: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.grpc = grpc


def normalize_class_name(name: str) -> str:
    """Weaviate's class-name rule: the first letter upper-cased."""
    return name[:1].upper() + name[1:] if name else name


@dataclass
class Obj:
    """One stored object."""

    uuid: str
    props: dict[str, Any]
    vectors: dict[str, np.ndarray]
    created: int = field(default_factory=lambda: int(time.time() * 1000))
    updated: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class Coll:
    schema: dict[str, Any]
    objects: dict[str, Obj] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    _order: list[str] | None = None
    _matrices: dict[str, tuple[list[Obj], np.ndarray, np.ndarray]] = field(default_factory=dict)

    def changed(self) -> None:
        """Forget the caches (called on every write)."""
        self._order = None
        self._matrices.clear()

    def ordered(self) -> list[str]:
        """The object UUIDs in UUID order (cached until the next write)."""
        if self._order is None:
            self._order = sorted(self.objects)
        return self._order

    def matrix(self, target: str) -> tuple[list[Obj], np.ndarray, np.ndarray]:
        """The objects holding vector ``target``, their vectors as one matrix, and the
        same scaled to unit rows (cached until the next write)."""
        got = self._matrices.get(target)
        if got is None:
            objs = [o for o in self.objects.values() if target in o.vectors]
            mat = (np.stack([o.vectors[target] for o in objs]) if objs
                   else np.zeros((0, 0), np.float32))  # fmt: skip
            got = self._matrices[target] = (objs, mat, unit_rows(mat) if objs else mat)
        return got

    @property
    def name(self) -> str:
        return str(self.schema["class"])

    def prop_types(self) -> dict[str, str]:
        return {p["name"]: p["dataType"][0] for p in self.schema.get("properties", [])}

    def prop_tokenization(self, name: str) -> str:
        for p in self.schema.get("properties", []):
            if p["name"] == name:
                return str(p.get("tokenization") or "word")
        return "word"

    def vector_names(self) -> list[str]:
        return list(self.schema.get("vectorConfig") or {}) or ["default"]

    def distance_of(self, target: str) -> str:
        vc = self.schema.get("vectorConfig") or {}
        if target in vc:
            return str(vc[target]["vectorIndexConfig"]["distance"])
        return str(self.schema.get("vectorIndexConfig", {}).get("distance", "cosine"))


def _hnsw_defaults(given: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "skip": False, "cleanupIntervalSeconds": 300, "maxConnections": 32,
        "efConstruction": 128, "ef": -1, "dynamicEfMin": 100, "dynamicEfMax": 500,
        "dynamicEfFactor": 8, "vectorCacheMaxObjects": 1000000000000,
        "flatSearchCutoff": 40000, "distance": "cosine", "filterStrategy": "sweeping",
        "pq": {"enabled": False, "bitCompression": False, "segments": 0, "centroids": 256,
               "trainingLimit": 100000,
               "encoder": {"type": "kmeans", "distribution": "log-normal"}},
        "bq": {"enabled": False},
        "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
        "rq": {"enabled": False, "bits": 8, "rescoreLimit": 20},
        "multivector": {"enabled": False, "muvera": {"enabled": False, "ksim": 4,
                        "dprojections": 16, "repetitions": 10}, "aggregation": "maxSim"},
    }  # fmt: skip
    for k, v in (given or {}).items():
        out[k] = copy.deepcopy(v)
    dist = out["distance"]
    if dist not in _DISTANCES:
        raise ApiError(
            422, f"invalid distance metric {dist!r}, must be one of {sorted(_DISTANCES)}"
        )
    return out


def _fill_defaults(body: Mapping[str, Any]) -> dict[str, Any]:
    """The class as Weaviate stores it: the given fields with the server's defaults."""
    schema = copy.deepcopy(dict(body))
    name = schema.get("class")
    if not isinstance(name, str) or not name:
        raise ApiError(422, "class name must be a non-empty string")
    name = normalize_class_name(name)
    if not _CLASS_RE.fullmatch(name):
        raise ApiError(
            422,
            f"'{name}' is not a valid class name: it must match /^[A-Z][_0-9A-Za-z]*$/ and "
            "be at most 255 characters",
        )
    schema["class"] = name
    schema.setdefault("description", "")
    props = []
    seen: set[str] = set()
    for p in schema.get("properties") or []:
        props.append(_check_property(p, seen))
    schema["properties"] = props
    inv = schema.setdefault("invertedIndexConfig", {})
    inv.setdefault("bm25", {"b": 0.75, "k1": 1.2})
    inv.setdefault("cleanupIntervalSeconds", 60)
    inv.setdefault("stopwords", {"preset": "en", "additions": None, "removals": None})
    inv.setdefault("usingBlockMaxWAND", True)
    schema.setdefault("multiTenancyConfig", {"enabled": False, "autoTenantCreation": False,
                                             "autoTenantActivation": False})  # fmt: skip
    schema.setdefault("replicationConfig", {
        "factor": 1, "asyncEnabled": False, "deletionStrategy": "NoAutomatedResolution",
    })  # fmt: skip
    schema.setdefault("shardingConfig", {
        "virtualPerPhysical": 128, "desiredCount": 1, "actualCount": 1,
        "desiredVirtualCount": 128, "actualVirtualCount": 128, "key": "_id",
        "strategy": "hash", "function": "murmur3"})  # fmt: skip
    vc = schema.get("vectorConfig")
    if vc:
        for vname, cfg in vc.items():
            if not isinstance(vname, str) or not _PROP_RE.fullmatch(vname):
                raise ApiError(422, f"invalid target vector name {vname!r}")
            vectorizer = cfg.get("vectorizer") or {"none": {}}
            if list(vectorizer) != ["none"]:
                raise ApiError(
                    422,
                    f"vectorizer {next(iter(vectorizer))!r} is not available: no modules "
                    "are enabled on this server (use vectorizer 'none')",
                )
            cfg["vectorizer"] = vectorizer
            cfg.setdefault("vectorIndexType", "hnsw")
            if cfg["vectorIndexType"] not in ("hnsw", "flat"):
                raise ApiError(422, f"unsupported vector index type {cfg['vectorIndexType']!r}")
            cfg["vectorIndexConfig"] = _hnsw_defaults(cfg.get("vectorIndexConfig"))
        schema.pop("vectorizer", None)
        schema.pop("vectorIndexConfig", None)
        schema.pop("vectorIndexType", None)
    else:
        if schema.get("vectorizer", "none") != "none":
            raise ApiError(422, f"vectorizer {schema['vectorizer']!r} is not available")
        schema["vectorizer"] = "none"
        schema.setdefault("vectorIndexType", "hnsw")
        schema["vectorIndexConfig"] = _hnsw_defaults(schema.get("vectorIndexConfig"))
    schema.setdefault("moduleConfig", {})
    return schema


def _check_property(p: Mapping[str, Any], seen: set[str]) -> dict[str, Any]:
    prop = copy.deepcopy(dict(p))
    name = prop.get("name")
    if not isinstance(name, str) or not _PROP_RE.fullmatch(name):
        raise ApiError(
            422, f"'{name}' is not a valid property name: it must match /[_A-Za-z][_0-9A-Za-z]*/"
        )
    if name in _RESERVED_PROPS:
        raise ApiError(422, f"'{name}' is a reserved property name")
    if name.lower() in seen:
        raise ApiError(422, f"property '{name}' already exists")
    seen.add(name.lower())
    dtype = prop.get("dataType")
    if not isinstance(dtype, list) or len(dtype) != 1 or dtype[0] not in _DATA_TYPES:
        raise ApiError(422, f"property '{name}': unknown data type {dtype!r}")
    if dtype[0] in ("text", "text[]"):
        prop.setdefault("tokenization", "word")
        if prop["tokenization"] not in ("word", "field", "whitespace", "lowercase", "trigram"):
            raise ApiError(422, f"property '{name}': unknown tokenization {prop['tokenization']!r}")
    prop.setdefault("indexFilterable", True)
    prop.setdefault("indexSearchable", dtype[0] in ("text", "text[]"))
    prop.setdefault("indexRangeFilters", False)
    prop.setdefault("description", "")
    return prop


# -- values -----------------------------------------------------------------------------


def _coerce(name: str, dtype: str, value: Any) -> Any:
    """A property value as stored for its data type; ``ValueError`` saying why not."""
    if value is None:
        return None
    base, is_list = dtype.rstrip("[]"), dtype.endswith("[]")
    if is_list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"invalid {dtype} property '{name}': not an array")
        return [_coerce(name, base, v) for v in value]
    if base in ("text", "date", "uuid", "blob"):
        if not isinstance(value, str):
            raise ValueError(
                f"invalid text property '{name}' on class: not a string, got {value!r}"
            )
        return value
    if base == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"invalid boolean property '{name}': got {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"invalid integer property '{name}': got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(
                    f"invalid integer property '{name}': requires an integer, the given value "
                    f"is '{value}'"
                )
            value = int(value)
        return int(value)
    if base == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"invalid number property '{name}': got {value!r}")
        return float(value)
    if base == "object":
        if not isinstance(value, dict):
            raise ValueError(f"invalid object property '{name}'")
        return value
    return value


def _infer(value: Any) -> str | None:
    """The data type auto-schema gives a new property."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list) and value:
        inner = _infer(value[0])
        return None if inner is None else inner + "[]"
    if isinstance(value, dict):
        return "object"
    return None


def _tokens(text: str, tokenization: str) -> list[str]:
    if tokenization == "field":
        return [text.strip()]
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "lowercase":
        return text.lower().split()
    return [t for t in re.split(r"[^0-9A-Za-z]+", text.lower()) if t]


# -- distances --------------------------------------------------------------------------


def distances(
    metric: str, query: np.ndarray, mat: np.ndarray, normed: np.ndarray | None = None
) -> np.ndarray:
    """Weaviate's distance of ``query`` to each row of ``mat`` (float32). ``normed``: the
    rows of ``mat`` scaled to unit length, when the caller has them (cosine)."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    m = np.asarray(mat, dtype=np.float32)
    if metric == "cosine":
        qn = q / max(float(np.sqrt(q @ q)), 1e-30)
        if normed is None:
            normed = unit_rows(m)
        return np.asarray(1.0 - normed @ qn, dtype=np.float32)
    if metric == "dot":
        return np.asarray(-(m @ q), dtype=np.float32)
    if metric == "l2-squared":
        d = m - q[None, :]
        return np.asarray(np.einsum("ij,ij->i", d, d), dtype=np.float32)
    if metric == "manhattan":
        return np.asarray(np.abs(m - q[None, :]).sum(axis=1), dtype=np.float32)
    return np.asarray((m != q[None, :]).sum(axis=1), dtype=np.float32)


def unit_rows(m: np.ndarray) -> np.ndarray:
    """The rows of ``m`` scaled to unit length (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", m, m))
    return np.asarray(m / np.maximum(norms, 1e-30)[:, None], dtype=np.float32)


# -- filters ----------------------------------------------------------------------------

#: A transport-neutral filter: ("and"|"or"|"not", [children]) or
#: (operator, property, value) with operator one of equal, not_equal, greater_than,
#: greater_than_equal, less_than, less_than_equal, contains_any, contains_all,
#: contains_none, is_null, like.
FilterNode = tuple[Any, ...]


def _cmp(op: str, a: Any, b: Any) -> bool:
    try:
        if op == "equal":
            return bool(a == b)
        if op == "not_equal":
            return bool(a != b)
        if op == "greater_than":
            return bool(a > b)
        if op == "greater_than_equal":
            return bool(a >= b)
        if op == "less_than":
            return bool(a < b)
        if op == "less_than_equal":
            return bool(a <= b)
    except TypeError:
        return False
    raise ApiError(422, f"unsupported operator {op}")


def _like(pattern: str, value: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, flags=re.IGNORECASE) is not None


def _check_filter_value(coll: Coll, prop: str, value: Any) -> None:
    if prop == "_id":
        vals = value if isinstance(value, list) else [value]
        for v in vals:
            try:
                uuidlib.UUID(str(v))
            except ValueError:
                raise ApiError(422, f"invalid uuid filter value {v!r}") from None
        return
    types = coll.prop_types()
    if prop not in types and prop not in ("_creationTimeUnix", "_lastUpdateTimeUnix"):
        raise ApiError(
            422,
            f"no such prop with name '{prop}' found in class '{coll.name}' in the schema. "
            "Check your schema files for which properties in this class are available",
        )


def matches(coll: Coll, obj: Obj, node: FilterNode) -> bool:
    """Whether ``obj`` satisfies the filter ``node``."""
    kind = node[0]
    if kind == "and":
        return all(matches(coll, obj, c) for c in node[1])
    if kind == "or":
        return any(matches(coll, obj, c) for c in node[1])
    if kind == "not":
        return not all(matches(coll, obj, c) for c in node[1])
    op, prop, value = node
    if prop == "_id":
        stored: Any = obj.uuid
        value = [str(v).lower() for v in value] if isinstance(value, list) else str(value).lower()
        dtype = "uuid"
    elif prop == "_creationTimeUnix":
        stored, dtype = obj.created, "int"
    elif prop == "_lastUpdateTimeUnix":
        stored, dtype = obj.updated, "int"
    else:
        stored = obj.props.get(prop)
        dtype = coll.prop_types().get(prop, "text")
    if op == "is_null":
        return bool((stored is None or stored == []) == bool(value))
    if stored is None:
        return bool(op in ("contains_none", "not_equal"))
    elems = stored if isinstance(stored, list) else [stored]
    if dtype.startswith("text"):
        tok = coll.prop_tokenization(prop)
        elems_t = [t for e in elems for t in _tokens(str(e), tok)]
        wanted = value if isinstance(value, list) else [value]
        wanted_t = [t for w in wanted for t in _tokens(str(w), tok)]
        if op == "equal" and not isinstance(value, list):
            return bool(wanted_t) and all(t in elems_t for t in wanted_t)
        if op == "not_equal":
            return not (wanted_t and all(t in elems_t for t in wanted_t))
        if op == "like":
            return any(_like(str(value), str(e)) for e in elems)
        if op == "contains_any":
            return any(t in elems_t for t in wanted_t)
        if op == "contains_all":
            return all(t in elems_t for t in wanted_t)
        if op == "contains_none":
            return not any(t in elems_t for t in wanted_t)
        return any(_cmp(op, e, value) for e in elems)
    if op == "contains_any":
        return any(e == v for e in elems for v in value)
    if op == "contains_all":
        return all(any(e == v for e in elems) for v in value)
    if op == "contains_none":
        return not any(e == v for e in elems for v in value)
    if op == "not_equal":
        return not any(_cmp("equal", e, value) for e in elems)
    return any(_cmp(op, e, value) for e in elems)


def id_set(node: FilterNode | None) -> set[str] | None:
    """The UUIDs a filter admits at most, when it pins them (an ``_id`` equality or
    ``ContainsAny``, alone or in an ``and``): lets a lookup replace a full pass."""
    if node is None:
        return None
    if node[0] == "and":
        sets = [s for s in (id_set(c) for c in node[1]) if s is not None]
        return set.intersection(*sets) if sets else None
    if node[0] in ("equal", "contains_any") and len(node) == 3 and node[1] == "_id":
        vals = node[2] if isinstance(node[2], list) else [node[2]]
        return {str(v).lower() for v in vals}
    return None


def _check_node(coll: Coll, node: FilterNode) -> None:
    if node[0] in ("and", "or", "not"):
        for c in node[1]:
            _check_node(coll, c)
    else:
        _check_filter_value(coll, node[1], node[2])


_PROPERTY_UPDATE_ERROR = (
    "property fields other than description cannot be updated through updating the class. "
    'Use the add property feature (e.g. "POST /v1/schema/{className}/properties") to add '
    "additional properties"
)
_PROPERTY_FIXED = ("dataType", "tokenization", "indexFilterable", "indexSearchable",
                   "indexRangeFilters")  # fmt: skip


def _check_property_update(
    existing: list[dict[str, Any]], body: Mapping[str, Any]
) -> dict[str, str]:
    """The property descriptions a class update sets; 422 (Weaviate's message) when it
    adds, drops or changes a property otherwise."""
    if "properties" not in body:
        return {}
    given = body.get("properties") or []
    if not isinstance(given, list) or len(given) != len(existing):
        raise ApiError(422, _PROPERTY_UPDATE_ERROR)
    have = sorted(existing, key=lambda p: str(p["name"]))
    new = sorted((p for p in given if isinstance(p, dict)), key=lambda p: str(p.get("name")))
    if len(new) != len(have):
        raise ApiError(422, _PROPERTY_UPDATE_ERROR)
    out: dict[str, str] = {}
    for old, upd in zip(have, new, strict=True):
        if upd.get("name") != old["name"]:
            raise ApiError(422, _PROPERTY_UPDATE_ERROR)
        for k in _PROPERTY_FIXED:
            if k in upd and upd[k] != old.get(k):
                raise ApiError(422, f'property "{old["name"]}": {_PROPERTY_UPDATE_ERROR}')
        if "description" in upd:
            out[old["name"]] = str(upd.get("description") or "")
    return out


def _check_vector_update(coll: Coll, given: Any) -> dict[str, Any]:
    """The named vectors a class update adds; 422 (Weaviate's messages) when it leaves
    one out or changes the vectorizer, index type or distance of one."""
    have = coll.schema.get("vectorConfig") or {}
    if not given:
        if have:
            raise ApiError(422, "missing configs for vectors")
        return {}
    if not isinstance(given, dict):
        raise ApiError(422, "vectorConfig must be an object")
    if not have:
        raise ApiError(422, "additional configs for vectors")
    for vname, cfg in have.items():
        upd = given.get(vname)
        if upd is None:
            raise ApiError(422, f'missing config for vector "{vname}"')
        itype = upd.get("vectorIndexType", cfg["vectorIndexType"])
        if itype != cfg["vectorIndexType"]:
            raise ApiError(422, f'vector index type of vector "{vname}" is immutable: attempted '
                                f'change from "{cfg["vectorIndexType"]}" to "{itype}"')  # fmt: skip
        old_v, new_v = next(iter(cfg["vectorizer"])), next(iter(upd.get("vectorizer") or
                                                                 cfg["vectorizer"]))  # fmt: skip
        if old_v != new_v:
            raise ApiError(422, f'vectorizer of vector "{vname}" is immutable: attempted change '
                                f'from "{old_v}" to "{new_v}"')  # fmt: skip
        old_d = cfg["vectorIndexConfig"]["distance"]
        new_d = (upd.get("vectorIndexConfig") or {}).get("distance", old_d)
        if new_d != old_d:
            raise ApiError(422, f"validate vector index config: distance is immutable: "
                                f'attempted change from "{old_d}" to "{new_d}"')  # fmt: skip
    fresh = {k: v for k, v in given.items() if k not in have}
    if not fresh:
        return {}
    probe = _fill_defaults({"class": "Probe", "vectorConfig": copy.deepcopy(fresh)})
    return dict(probe["vectorConfig"])



# -- the state --------------------------------------------------------------------------


@dataclass
class Hit:
    obj: Obj
    distance: float | None
    metric: str | None


class WeaviateState:
    """Everything the emulator holds, behind one lock."""

    #: Weaviate's QUERY_MAXIMUM_RESULTS default.
    max_results = 10_000

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.collections: dict[str, Coll] = {}
        self.aliases: dict[str, str] = {}

    # -- names ----------------------------------------------------------------------

    def resolve(self, name: str) -> Coll:
        """The collection ``name`` (or the alias ``name``) denotes; 404 otherwise."""
        with self.lock:
            n = normalize_class_name(name)
            target = self.aliases.get(n, n)
            coll = self.collections.get(target)
            if coll is None:
                raise ApiError(404, f"class {n!r} not found", grpc="NOT_FOUND")
            return coll

    # -- schema ---------------------------------------------------------------------

    def create_class(self, body: Mapping[str, Any]) -> dict[str, Any]:
        schema = _fill_defaults(body)
        with self.lock:
            name = schema["class"]
            if name in self.collections:
                raise ApiError(422, f"class name {name!r} already exists")
            if name in self.aliases:
                raise ApiError(422, f"class name {name!r} already exists as an alias")
            self.collections[name] = Coll(schema)
            return copy.deepcopy(schema)

    def get_class(self, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.resolve(name).schema)

    def list_classes(self) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(c.schema) for c in self.collections.values()]

    def delete_class(self, name: str) -> None:
        with self.lock:
            n = normalize_class_name(name)
            if n in self.aliases:
                raise ApiError(422, f"{n!r} is an alias: delete the alias, not the class")
            if self.collections.pop(n, None) is not None:
                for a in [a for a, c in self.aliases.items() if c == n]:
                    del self.aliases[a]

    def add_property(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            coll = self.resolve(name)
            seen = {p["name"].lower() for p in coll.schema["properties"]}
            prop = _check_property(body, seen)
            coll.schema["properties"].append(prop)
            return copy.deepcopy(prop)

    def update_class(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /v1/schema/{class}``: the whole class as the client read it, changed. As
        Weaviate (1.31+) checks it, all or nothing: the properties must be the existing
        ones (only their descriptions may change; adding one is ``POST .../properties``),
        every existing named vector must still be there with its vectorizer, index type
        and distance (a named vector cannot be removed), and new named vectors are added
        (how ``collection.config.add_vector`` adds one)."""
        with self.lock:
            coll = self.resolve(name)
            descriptions = _check_property_update(coll.schema["properties"], body)
            added = _check_vector_update(coll, body.get("vectorConfig"))
            if "description" in body:
                coll.schema["description"] = body["description"]
            for p in coll.schema["properties"]:
                if p["name"] in descriptions:
                    p["description"] = descriptions[p["name"]]
            if added:
                coll.schema["vectorConfig"].update(added)
            return copy.deepcopy(coll.schema)

    # -- aliases --------------------------------------------------------------------

    def create_alias(self, alias: str, cls: str) -> dict[str, str]:
        with self.lock:
            a, c = normalize_class_name(alias), normalize_class_name(cls)
            if not _CLASS_RE.fullmatch(a):
                raise ApiError(422, f"'{a}' is not a valid alias name")
            if a in self.aliases:
                raise ApiError(422, f"create alias: alias {a} already exists")
            if a in self.collections:
                raise ApiError(422, f"create alias: class {a} already exists")
            if c not in self.collections:
                raise ApiError(404, f"create alias: class {c} does not exist")
            self.aliases[a] = c
            return {"alias": a, "class": c}

    def update_alias(self, alias: str, cls: str) -> dict[str, str]:
        with self.lock:
            a, c = normalize_class_name(alias), normalize_class_name(cls)
            if a not in self.aliases:
                raise ApiError(404, f"alias {a} not found")
            if c not in self.collections:
                raise ApiError(404, f"replace alias: class {c} does not exist")
            self.aliases[a] = c
            return {"alias": a, "class": c}

    def get_alias(self, alias: str) -> dict[str, str]:
        with self.lock:
            a = normalize_class_name(alias)
            if a not in self.aliases:
                raise ApiError(404, f"alias {a} not found")
            return {"alias": a, "class": self.aliases[a]}

    def list_aliases(self, cls: str | None) -> list[dict[str, str]]:
        with self.lock:
            c = normalize_class_name(cls) if cls else None
            return [{"alias": a, "class": t} for a, t in sorted(self.aliases.items())
                    if c is None or t == c]  # fmt: skip

    def delete_alias(self, alias: str) -> None:
        with self.lock:
            a = normalize_class_name(alias)
            if a not in self.aliases:
                raise ApiError(404, f"alias {a} not found")
            del self.aliases[a]

    # -- objects --------------------------------------------------------------------

    def put_objects(
        self, items: Iterable[tuple[str, str, dict[str, Any], dict[str, np.ndarray]]]
    ) -> dict[int, str]:
        """Insert or replace objects ``(class, uuid, properties, vectors)``; the errors by
        position (an object with an error is not written; the others are)."""
        errors: dict[int, str] = {}
        with self.lock:
            for i, (cls, uid, props, vecs) in enumerate(items):
                try:
                    self._put_one(cls, uid, props, vecs)
                except ApiError as e:
                    errors[i] = e.message
                except ValueError as e:
                    errors[i] = str(e)
        return errors

    def _put_one(
        self, cls: str, uid: str, props: dict[str, Any], vecs: dict[str, np.ndarray]
    ) -> None:
        coll = self.resolve(cls)
        try:
            u = str(uuidlib.UUID(uid))
        except ValueError:
            raise ValueError(f"invalid UUID {uid!r}") from None
        types = coll.prop_types()
        stored: dict[str, Any] = {}
        new_props: list[dict[str, Any]] = []
        for k, v in props.items():
            if k not in types:
                dtype = _infer(v)
                if dtype is None:
                    continue
                new_props.append(_check_property({"name": k, "dataType": [dtype]},
                                                 {t.lower() for t in types}))  # fmt: skip
                types[k] = dtype
            stored[k] = _coerce(k, types[k], v)
        names = coll.vector_names()
        named = bool(coll.schema.get("vectorConfig"))
        checked: dict[str, np.ndarray] = {}
        for vname, vec in vecs.items():
            if named and vname not in names:
                raise ValueError(
                    f"collection {coll.name} does not have a target vector named {vname!r}"
                )
            v = np.asarray(vec, dtype=np.float32).reshape(-1)
            if v.size == 0:
                continue
            want = coll.dims.get(vname)
            if want is not None and want != v.size:
                raise ValueError(
                    f"new node has a vector with length {v.size}. Existing nodes have "
                    f"vectors with length {want}"
                )
            checked[vname] = v.copy()
        for vname, v in checked.items():
            coll.dims.setdefault(vname, int(v.size))
        coll.schema["properties"].extend(new_props)
        now = int(time.time() * 1000)
        old = coll.objects.get(u)
        coll.objects[u] = Obj(u, stored, checked, old.created if old else now, now)
        coll.changed()

    def merge_object(
        self, cls: str, uid: str, props: Mapping[str, Any], vecs: Mapping[str, np.ndarray]
    ) -> Obj:
        """``PATCH /v1/objects/{class}/{id}``, as Weaviate merges: 404 when there is no such
        object; the given properties replace the stored ones, a property given as null is
        removed; the given named vectors replace those of their names and every other
        stored vector is kept. A wrong property value or an unknown vector name is a 422;
        a vector whose length differs from its index's is refused by the index, which
        Weaviate reports as a 500 (``repo.merge``)."""
        with self.lock:
            coll = self.resolve(cls)
            u = str(uid).lower()
            old = coll.objects.get(u)
            if old is None:
                raise ApiError(404, f"object {uid} not found", grpc="NOT_FOUND")
            merged = dict(old.props)
            for k, v in props.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            names = coll.vector_names()
            vectors = dict(old.vectors)
            for vname, vec in vecs.items():
                if coll.schema.get("vectorConfig") and vname not in names:
                    raise ApiError(422, f"collection {coll.name} does not have a target "
                                        f"vector named {vname!r}")  # fmt: skip
                v = np.asarray(vec, dtype=np.float32).reshape(-1)
                want = coll.dims.get(vname)
                if want is not None and v.size and want != v.size:
                    raise ApiError(
                        500,
                        f"repo.merge: merge into index {coll.name.lower()}: update vector "
                        f"index for target vector {vname!r}: new node has a vector with "
                        f"length {v.size}. Existing nodes have vectors with length {want}",
                        grpc="INTERNAL",
                    )
                vectors[vname] = v
            try:
                self._put_one(coll.name, u, merged, vectors)
            except ValueError as e:
                raise ApiError(422, f"invalid object: {e}") from None
            return coll.objects[u]

    def get_object(self, cls: str, uid: str) -> Obj | None:
        with self.lock:
            coll = self.resolve(cls)
            return coll.objects.get(str(uid).lower())

    def delete_object(self, cls: str, uid: str) -> bool:
        with self.lock:
            coll = self.resolve(cls)
            coll.changed()
            return coll.objects.pop(str(uid).lower(), None) is not None

    def delete_where(self, cls: str, node: FilterNode, *, dry_run: bool = False) -> list[str]:
        with self.lock:
            coll = self.resolve(cls)
            _check_node(coll, node)
            pinned = id_set(node)
            pool = (coll.objects.items() if pinned is None else
                    [(u, coll.objects[u]) for u in pinned if u in coll.objects])  # fmt: skip
            hits = [u for u, o in pool if matches(coll, o, node)]
            if len(hits) > self.max_results:
                hits = sorted(hits)[: self.max_results]
            if not dry_run:
                for u in hits:
                    del coll.objects[u]
                coll.changed()
            return hits

    def count(self, cls: str, node: FilterNode | None) -> int:
        with self.lock:
            coll = self.resolve(cls)
            if node is None:
                return len(coll.objects)
            _check_node(coll, node)
            return sum(1 for o in coll.objects.values() if matches(coll, o, node))

    def query(
        self,
        cls: str,
        *,
        limit: int | None,
        offset: int = 0,
        after: str | None = None,
        node: FilterNode | None = None,
        near: np.ndarray | None = None,
        target: str | None = None,
        max_distance: float | None = None,
        min_certainty: float | None = None,
        autocut: int | None = None,
    ) -> tuple[Coll, list[Hit]]:
        """Objects of a class: filtered, optionally ranked by distance to ``near``."""
        del autocut
        with self.lock:
            coll = self.resolve(cls)
            if after is not None and (node is not None or near is not None or offset):
                raise ApiError(
                    422,
                    "explorer: list class: search: invalid pagination params: cursor api: "
                    "invalid 'after' parameter: other params cannot be set along with "
                    "'after' and 'limit' parameters",
                )
            if node is not None:
                _check_node(coll, node)
            lim = self.max_results if limit is None else limit
            if lim < 0 or offset < 0:
                raise ApiError(422, "limit and offset must be >= 0")
            if offset + lim > self.max_results and near is None and after is None:
                lim = max(0, self.max_results - offset)
            keep: Callable[[Obj], bool] = (
                (lambda o: True) if node is None else (lambda o: matches(coll, o, node))
            )
            pinned = id_set(node)
            if near is None and pinned is not None:
                found = sorted((coll.objects[u] for u in pinned if u in coll.objects
                                and keep(coll.objects[u])), key=lambda o: o.uuid)  # fmt: skip
                return coll, [Hit(o, None, None) for o in found[offset : offset + lim]]
            if near is None:
                order = coll.ordered()
                start = 0 if after is None else bisect.bisect_right(order, str(after).lower())
                picked: list[Obj] = []
                skip = offset
                for u in order[start:]:
                    o = coll.objects[u]
                    if not keep(o):
                        continue
                    if skip:
                        skip -= 1
                        continue
                    if len(picked) >= lim:
                        break
                    picked.append(o)
                return coll, [Hit(o, None, None) for o in picked]
            names = coll.vector_names()
            tgt = target or (names[0] if len(names) == 1 else None)
            if tgt is None:
                raise ApiError(
                    422,
                    f"multiple target vectors in collection {coll.name}: specify which "
                    "target vector to search with (target_vector)",
                )
            if bool(coll.schema.get("vectorConfig")) and tgt not in names:
                # Weaviate's message (from extracting the target vectors), gRPC UNKNOWN
                raise ApiError(
                    422,
                    f"extract target vectors: class {coll.name} does not have named vector "
                    f"{tgt} configured. Available named vectors map[{' '.join(names)}]",
                    grpc="UNKNOWN",
                )
            metric = coll.distance_of(tgt)
            want = coll.dims.get(tgt)
            if want is not None and near.size != want:
                raise ApiError(
                    422,
                    f"vector search: knn search: distance between entrypoint and query "
                    f"node: vector lengths don't match: {want} vs {near.size}",
                )
            objs, mat, normed = coll.matrix(tgt)
            if node is not None:
                rows = [j for j, o in enumerate(objs) if keep(o)]
                objs, mat, normed = [objs[j] for j in rows], mat[rows], normed[rows]
            if not objs:
                return coll, []
            d = distances(metric, near, mat, normed)
            top = offset + lim
            if top < len(objs):
                # the `top` smallest, plus every object tied with the last of them
                cut = np.partition(d, top - 1)[top - 1]
                idx = np.nonzero(d <= cut)[0]
            else:
                idx = np.arange(len(objs))
            ranked = sorted(idx.tolist(), key=lambda j: (float(d[j]), objs[j].uuid))
            out = []
            for j in ranked:
                dist = float(d[j])
                if max_distance is not None and dist > max_distance:
                    continue
                if (
                    min_certainty is not None
                    and metric == "cosine"
                    and 1 - dist / 2 < min_certainty
                ):
                    continue
                out.append(Hit(objs[j], dist, metric))
            return coll, out[offset : offset + lim]
