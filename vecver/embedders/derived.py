"""Derived spaces: a space declared as a transformation of a stored one, with no model of
its own.

    [spaces.v1-128]
    derive = { from = "v1", truncate = 128 }        # Matryoshka: first 128 dimensions

    [spaces.v1-in-v2]
    derive = { from = "v1", adapter = "v1-to-v2.npz" }   # v1 vectors mapped by an adapter

The vector of a text in a derived space is the source space's (final, normalized where
the source normalizes) vector of that text, transformed: its first ``truncate``
dimensions, or mapped by the adapter stored in the file (written by
``vecver adapter export``); the space then normalizes it as any space does. Prefixes,
truncation length, chunking, metric and normalization are the source's unless the table
gives them.

The fingerprint covers the derivation: the source space's fingerprint and the transform
(``truncate``, or the SHA-256 of the adapter file). So a derived space is a space like any
other for every rule of vecver (stamps, the fingerprint rule, cutover, rollback).

Migration needs no model: the backfill copies each document's STORED source vector
through the transform (:func:`from_stored`, the backfill's one hook), when the collection
holds the source space with a current copy of the document (same text, same
fingerprint); any other document — and every new write — is embedded by the source's
model, then transformed. A query is embedded by the source space's model, then
transformed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..space import SpaceSpec
from ..types import Document, Matrix, Record, Stamp
from . import Embedder, SpaceEmbedder

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import NamespaceRow

KIND = "derived"
_INHERITED = ("metric", "normalize", "query_prefix", "document_prefix", "max_length",
              "chunking")


def _adapter_dims(path: str, where: str) -> tuple[int, int]:
    from ..adapters.base import load_adapter
    from ..errors import InvalidInput

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read adapter file {path}: {e}") from None
    try:
        ad = load_adapter(data)
    except InvalidInput as e:
        raise ConfigError(f"{where}: {path} is not an adapter file: {e.message}",
                          hint="write one with `vecver adapter export`") from None
    return ad.source_dim, ad.target_dim


def resolve_derived(spaces: Mapping[str, SpaceSpec],
                    absolute: Callable[[str], str] = lambda p: p) -> dict[str, SpaceSpec]:
    """The specs with every derived one completed: embedder ``derived``, its dimension,
    the fields it inherits from its source, and ``derive["source"]`` (the source spec as a
    dict, itself completed). Raises ``ConfigError`` for an unknown source, a cycle, a
    ``derive`` table without exactly one of ``truncate`` / ``adapter``, a ``truncate``
    outside 1..source dimension, an adapter file that cannot be read or whose input
    width is not the source's dimension, or a declared ``dimension`` that disagrees."""
    out: dict[str, SpaceSpec] = dict(spaces)
    done: set[str] = {k for k, v in spaces.items() if v.derive is None}

    def resolve(label: str, chain: tuple[str, ...]) -> SpaceSpec:
        spec = out[label]
        if label in done:
            return spec
        where = f"[spaces.{label}] derive"
        if label in chain:
            raise ConfigError(f"{where}: derivation cycle " + " -> ".join((*chain, label)))
        d = dict(spec.derive or {})
        d.pop("source", None)
        unknown = sorted(set(d) - {"from", "truncate", "adapter"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}",
                              hint="use from = LABEL and truncate = D or adapter = FILE")
        src_label = d.get("from")
        if not isinstance(src_label, str) or src_label not in out:
            raise ConfigError(f"{where}: 'from' must name a declared space, got "
                              f"{src_label!r}", hint="known spaces: " + ", ".join(sorted(out)))
        if ("truncate" in d) == ("adapter" in d):
            raise ConfigError(f"{where}: give exactly one of truncate = D or adapter = FILE")
        src = resolve(src_label, (*chain, label))
        if "truncate" in d:
            t = d["truncate"]
            if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= src.dimension:
                raise ConfigError(f"{where}: truncate must be an integer in 1..{src.dimension}"
                                  f" (the dimension of {src_label!r}), got {t!r}")
            dim = t
        else:
            if not isinstance(d["adapter"], str) or not d["adapter"]:
                raise ConfigError(f"{where}: adapter must be a file path")
            d["adapter"] = absolute(d["adapter"])
            n_in, dim = _adapter_dims(d["adapter"], where)
            if n_in != src.dimension:
                raise ConfigError(f"{where}: the adapter maps {n_in}-dimensional vectors, "
                                  f"but {src_label!r} has {src.dimension}")
        if spec.embedder not in (KIND,):
            raise ConfigError(f"{where}: a derived space has no embedder of its own "
                              f"(got embedder = {spec.embedder!r})", hint="remove 'embedder'")
        if spec.dimension not in (1, dim) and spec.dimension != dim:
            raise ConfigError(f"{where}: dimension {spec.dimension} disagrees with the "
                              f"derivation ({dim})", hint="leave 'dimension' out")
        inherited = {f: getattr(src, f) for f in _INHERITED
                     if getattr(spec, f) == getattr(SpaceSpec, f, None)
                     or (f in ("query_prefix", "document_prefix") and getattr(spec, f) == "")}
        d["source"] = src.to_dict()
        done_spec = dataclasses.replace(spec, embedder=KIND, dimension=dim, derive=d,
                                        **inherited)
        out[label] = done_spec
        done.add(label)
        return done_spec

    for label in list(out):
        resolve(label, ())
    return out


def _source_spec(spec: SpaceSpec) -> SpaceSpec:
    d = spec.derive or {}
    src = d.get("source")
    if not isinstance(src, Mapping):
        raise ConfigError(f"space {spec.label!r}: a derived space needs its source resolved",
                          hint="declare it in vecver.toml (derive = {from = ..., ...})")
    return SpaceSpec(**dict(src))


class DerivedEmbedder(Embedder):
    """``embedder = "derived"`` (set by :func:`resolve_derived`): the source space's
    vector, transformed."""

    kind = KIND

    def __init__(self, spec: SpaceSpec) -> None:
        super().__init__(spec)
        self._src: SpaceEmbedder | None = None
        self._transform: Callable[[Matrix], Matrix] | None = None
        self._adapter_sha: str | None = None

    def source(self) -> SpaceEmbedder:
        """The source space's embedder (resolved once)."""
        if self._src is None:
            self._src = SpaceEmbedder.for_spec(_source_spec(self.spec))
        return self._src

    def _derive(self) -> dict[str, Any]:
        return dict(self.spec.derive or {})

    def revision(self) -> str:
        return "derived:" + self.source().space.fingerprint

    def geometry_options(self) -> dict[str, Any]:
        d = self._derive()
        how: dict[str, Any] = {"source": self.source().space.fingerprint}
        if "truncate" in d:
            how["truncate"] = int(d["truncate"])
        else:
            if self._adapter_sha is None:
                self._adapter_sha = hashlib.sha256(Path(d["adapter"]).read_bytes()).hexdigest()
            how["adapter"] = self._adapter_sha
        return {"derive": how}

    def transform(self) -> Callable[[Matrix], Matrix]:
        """The map from the source space's final vectors to this space's (before this
        space normalizes)."""
        if self._transform is None:
            d = self._derive()
            if "truncate" in d:
                t = int(d["truncate"])

                def cut(m: Matrix) -> Matrix:
                    out: Matrix = np.ascontiguousarray(m[:, :t], dtype=np.float32)
                    return out

                self._transform = cut
            else:
                from ..adapters.base import load_adapter

                ad = load_adapter(Path(d["adapter"]).read_bytes())
                self._transform = ad.transform
        return self._transform

    def embed(self, texts: Sequence[str]) -> Matrix:
        # the texts carry this space's prefixes, which are the source's (inherited)
        src = self.source()
        raw = np.asarray(src.embedder.embed(list(texts)), dtype=np.float32)
        if src.space.spec.normalize:
            raw = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        return self.transform()(raw)

    def close(self) -> None:
        if self._src is not None:
            self._src.embedder.close()


def from_stored(ws: Workspace, collection: str, ns: NamespaceRow,
                docs: Sequence[Document]) -> tuple[list[Record], list[Document]]:
    """For a derived space's namespace ``ns``: records for the ``docs`` whose source
    space holds a current vector in ``collection`` (same text, same fingerprint), made
    from that stored vector with no model call; and the docs left to embed. For any
    other space: ``([], docs)``."""
    emb = ws.embedder(ns.space_label)
    der = emb.embedder
    if not isinstance(der, DerivedEmbedder) or not docs:
        return [], list(docs)
    src_label = str(der._derive()["from"])
    src_row = ws.manifest.namespace_for(collection, src_label)
    src_fp = der.source().space.fingerprint
    if src_row is None or src_row.fingerprint != src_fp or src_row.state not in (
            "building", "ready", "active", "retired"):
        return [], list(docs)
    got = ws.backend_for(src_row).fetch(src_row.name, [d.id for d in docs], with_vectors=True)
    have: list[Document] = []
    vecs: list[Any] = []
    rest: list[Document] = []
    for d in docs:
        r = got.get(d.id)
        if (r is not None and r.vector is not None and r.stamp.fingerprint == src_fp
                and r.stamp.source_hash == d.source_hash):
            have.append(d)
            vecs.append(r.vector)
        else:
            rest.append(d)
    if not have:
        return [], rest
    mat = der.transform()(np.stack([np.asarray(v, dtype=np.float32) for v in vecs]))
    if emb.space.spec.normalize:
        mat = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    fp = emb.space.fingerprint
    recs = [Record(d.id, np.ascontiguousarray(v, dtype=np.float32), d.text, dict(d.metadata),
                   Stamp.now(fp, d.id, d.text)) for d, v in zip(have, mat)]
    return recs, rest
