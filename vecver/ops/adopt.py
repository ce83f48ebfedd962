"""Adopt: make a collection some other code filled the active space v1 of a new vecver
collection, without copying it.

The adopted collection keeps its own keys, id field, text field and payload (see
:mod:`vecver.backends.external` for how vecver reads it). What :func:`adopt` checks,
before anything is recorded or written (each refusal a typed error):

- the collection exists on the backend instance (``AdoptedNotFound``) and is not
  already a vecver namespace;
- its vectors have the space's dimension (``AdoptedDimensionMismatch``) and metric
  (``AdoptedMetricMismatch``);
- the text field (and the id field, when given) is a field of its schema
  (``AdoptedFieldMissing``), and every object checked holds a non-blank string there
  (``AdoptedFieldMissing`` naming some of their keys); the id field holds a string or
  an integer, unique per object (``AdoptedFieldMissing``, ``AdoptedIdDuplicated``);
- unless skipped, a sample of its stored vectors matches the space's embeddings of the
  stored texts (median cosine similarity at least ``min_similarity``:
  ``AdoptedVectorsMismatch``) — the check that it was filled by that space's model;
- the collection name can become the database's alias (native aliases only): it is not
  the physical collection's own name, nor another collection's, nor an alias pointing
  elsewhere.

Then it points the native alias (if any) at the collection — an alias is an object of its
own; the collection is not modified — and records the collection in the manifest with
the namespace active and its layout. From then on the collection is like any other:
``migrate``, ``backfill`` (texts read from the adopted text field), ``verify``,
``cutover``, ``rollback``.

What vecver writes into the adopted collection (the rule, documented in the README):
nothing during adopt, backfill, verify, cutover or rollback — it is only read. Writes of
the collection itself (``upsert``/``delete`` through vecver, dual-write included) reach it
in its own layout: its id field, its text field, the metadata as its own fields, no vecver
field or stamp; with ``read_only`` they are refused (``AdoptedReadOnly``) and the
collection is never written. A repair (``verify --repair``) of the adopted space deletes
tombstoned documents only.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.external import ExternalCollection, Layout, RawPoint, doc_id_of, text_of
from ..config import DEFAULT_INSTANCE
from ..errors import (
    AdoptedDimensionMismatch,
    AdoptedFieldMissing,
    AdoptedIdDuplicated,
    AdoptedMetricMismatch,
    AdoptedNotFound,
    AdoptedVectorsMismatch,
    AdoptError,
    InvalidArgument,
    NamespaceNotFound,
    StateError,
)
from ..runtime.progress import Progress
from ..space import check_label

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..runtime.workspace import Workspace

log = logging.getLogger("vecver")

__all__ = ["AdoptReport", "adopt"]

#: objects checked for their text and id fields by default (None: all of them)
CHECK_LIMIT = 10_000
#: objects whose vectors are compared with the space's embeddings of their texts
VECTOR_SAMPLE = 16
#: the median cosine similarity the vector check needs
MIN_SIMILARITY = 0.9
_PAGE = 256


@dataclass
class AdoptReport:
    """What :func:`adopt` recorded. ``checked``: objects whose fields were checked (all
    of them when ``checked == documents``); ``similarity``: the median cosine similarity
    of the vector check over ``sample`` objects (None when skipped); ``alias``: whether
    the database's own alias now names the collection."""

    collection: str
    namespace: str
    space: str
    instance: str
    backend: str
    documents: int
    dimension: int
    metric: str
    text_field: str | None
    id_field: str | None
    id_type: str
    writes: str
    checked: int
    similarity: float | None
    sample: int
    alias: bool
    vector_field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adopt(
    ws: Workspace,
    collection: str,
    *,
    namespace: str,
    space: str,
    text_field: str | None = None,
    id_field: str | None = None,
    vector_field: str | None = None,
    on: str | None = None,
    read_only: bool = False,
    check_limit: int | None = CHECK_LIMIT,
    vector_check: bool = True,
    min_similarity: float = MIN_SIMILARITY,
    progress: bool | None = None,
) -> AdoptReport:
    """Adopt the physical collection ``namespace`` of backend instance ``on`` (default:
    the default instance) as space ``space`` of the new collection ``collection``,
    active at once, without copying (see the module docstring for what is checked and
    what is written to it later).

    ``text_field``: the payload field holding each document's text (required unless the
    database has a text slot of its own: the local backend). ``id_field``: the field
    holding each document's id (default: the collection's own keys are the ids).
    ``vector_field``: the vector the space filled, in a collection holding several
    (required there; writes then set that vector of an object and keep the others).
    ``read_only``: vecver never writes to the collection (writes of the collection are
    refused while it is live). ``check_limit``: how many objects to check for the
    fields (None: all). ``vector_check``: compare a sample of stored vectors with the
    space's embeddings of their texts. ``progress``: as for the backfill (a check of
    more than :data:`CHECK_LIMIT` objects shows its progress; False: never).

    Raises ``ConfigError`` (bad collection name), ``StateError`` (the collection or the
    namespace is known already), ``UnknownSpace``, ``UnknownBackendInstance``,
    ``InvalidArgument``, the ``Adopted*`` errors above and backend errors; when it
    raises, nothing was recorded and no alias was left behind."""
    check_label(collection, "collection name")
    ws.manifest.require_writable()
    if ws.manifest.has_collection(collection):
        raise StateError(f"collection {collection!r} already exists",
                         hint="adopt under a new collection name")  # fmt: skip
    known = ws.manifest.namespace(namespace) if isinstance(namespace, str) else None
    if known is not None:
        raise StateError(
            f"{namespace!r} is already the namespace of space {known.space_label!r} of "
            f"collection {known.collection!r}",
            hint="it is vecver's already; nothing to adopt",
        )
    for name, value in (("text_field", text_field), ("id_field", id_field),
                        ("vector_field", vector_field)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidArgument(name, value, "a field name")
    if check_limit is not None and (
        isinstance(check_limit, bool) or not isinstance(check_limit, int) or check_limit < 1
    ):
        raise InvalidArgument("check_limit", check_limit, "a positive integer or None (all)")
    instance = on or DEFAULT_INSTANCE
    be = ws.instance(instance)
    spec = ws.space_spec(space)

    ext = _describe(be, namespace, instance, vector_field)
    if ext.vecver:
        raise AdoptError(
            f"{namespace!r} on {instance!r} is a namespace vecver created (of another "
            "workspace)",
            hint="use it through the workspace that owns it",
        )
    if ext.dimension != spec.dimension:
        raise AdoptedDimensionMismatch(namespace, space, spec.dimension, ext.dimension)
    if ext.metric != spec.metric:
        raise AdoptedMetricMismatch(namespace, space, spec.metric, ext.metric)
    _check_fields(ext, text_field, id_field)
    if ext.auto_key and not read_only:
        raise AdoptError(
            f"collection {namespace!r} lets the database assign its keys, so vecver cannot "
            "write new documents there in its layout",
            hint="adopt it with --read-only: it is then the source of a migration to a "
            "new space and is never written (writes of the collection are refused while "
            "it is live)",
        )
    _check_alias_name(be, collection, namespace)

    sp = ws.space(space)  # loads the embedder, registers the space
    layout = Layout.of(ext, sp.fingerprint, text_field=text_field, id_field=id_field,
                       writes="refuse" if read_only else "layout")  # fmt: skip
    total = ext.count if check_limit is None else min(ext.count, check_limit)
    bar = Progress(f"adopt {collection}: checking {namespace}", total, unit="objects",
                   enabled=progress if total > CHECK_LIMIT else False)  # fmt: skip
    try:
        checked, samples = _check_objects(be, layout, check_limit, bar)
    finally:
        bar.close()
    similarity: float | None = None
    if vector_check and samples:
        similarity = _vector_similarity(ws, space, layout, samples)
        if similarity < min_similarity:
            raise AdoptedVectorsMismatch(namespace, space, similarity, min_similarity,
                                         len(samples))  # fmt: skip

    alias = False
    be.attach(layout)  # reads only; what set_alias checks the namespace with
    try:
        if be.capabilities.native_alias:
            be.set_alias(collection, namespace)
            alias = True
        ws.manifest.create_collection(collection, space, sp.fingerprint, namespace,
                                      backend=instance, layout=layout.to_dict())  # fmt: skip
        ws.manifest.log("collection.adopted", collection, namespace=namespace, space=space,
                        backend=instance, text_field=layout.text_field,
                        id_field=layout.id_field, writes=layout.writes,
                        documents=ext.count)  # fmt: skip
    except BaseException:
        be.detach(namespace)
        if alias:
            try:
                be.drop_alias(collection)
            except Exception as e:  # noqa: BLE001 - the original error matters more
                log.warning("could not drop the alias %s after a failed adopt: %s",
                            collection, e)  # fmt: skip
        raise
    return AdoptReport(
        collection, namespace, space, instance, be.name, ext.count, ext.dimension,
        ext.metric, layout.text_field, layout.id_field, layout.id_type, layout.writes,
        checked, similarity, len(samples) if similarity is not None else 0, alias,
        layout.vector_field,
    )


def _describe(be: Backend, namespace: str, instance: str,
              vector_field: str | None) -> ExternalCollection:
    if not isinstance(namespace, str) or not namespace:
        raise InvalidArgument("namespace", namespace, "the name of the collection to adopt")
    try:
        return be.describe_external(namespace, vector_field=vector_field)
    except NamespaceNotFound:
        raise AdoptedNotFound(namespace, be.name, instance) from None
    except NotImplementedError:
        raise AdoptError(
            f"the {be.name} backend cannot adopt collections",
            hint="adopt on a local, Qdrant or Milvus instance, or ingest the documents",
        ) from None


def _check_fields(ext: ExternalCollection, text_field: str | None,
                  id_field: str | None) -> None:
    """The fields named exist in a schema'd collection; a text field is given where
    the database has no text slot."""
    fields = sorted(f for f in ext.fields if f not in (ext.key_field, ext.vector_field))
    if text_field is None and not ext.text_slot:
        raise AdoptedFieldMissing(ext.name, "", "text", [], fields=fields)
    if ext.schemaless:
        return
    for f, role in ((text_field, "text"), (id_field, "id")):
        if f is not None and f not in ext.fields:
            raise AdoptedFieldMissing(ext.name, f, role, [], fields=fields)


def _check_alias_name(be: Backend, collection: str, namespace: str) -> None:
    """With native aliases, ``collection`` must be free to become an alias of
    ``namespace``."""
    if not be.capabilities.native_alias:
        return
    if collection == namespace:
        raise AdoptError(
            f"the collection name {collection!r} is the name of the physical collection; "
            f"on {be.name} the collection name becomes a database alias, which cannot share it",
            hint=f"adopt under another name (e.g. {collection}_docs) and point readers at "
            "that alias",
        )
    current = be.get_alias(collection)
    if current is not None and current != namespace:
        raise AdoptError(
            f"the alias {collection!r} already points at {current!r}",
            hint="adopt under another collection name, or move that alias first",
        )
    if current is None:
        try:
            be.describe_external(collection)
        except (NamespaceNotFound, NotImplementedError):
            return
        raise AdoptError(
            f"{collection!r} is a collection of its own on {be.name}; the collection name "
            "must be free to become the alias",
            hint="adopt under another collection name",
        )


def _check_objects(
    be: Backend, layout: Layout, limit: int | None, bar: Progress
) -> tuple[int, list[tuple[str, str, np.ndarray]]]:
    """Check up to ``limit`` objects for their text and id fields; returns how many were
    checked and up to :data:`VECTOR_SAMPLE` (id, text, vector) samples."""
    missing_text: list[object] = []
    missing_id: list[object] = []
    n_missing_text = n_missing_id = 0
    seen: set[str] = set()
    dups: list[str] = []
    samples: list[tuple[str, str, np.ndarray]] = []
    checked = 0
    cursor: str | None = None
    while limit is None or checked < limit:
        size = _PAGE if limit is None else min(_PAGE, limit - checked)
        points, cursor = be.scan_external(
            layout.name, layout=layout, cursor=cursor, limit=size,
            with_vectors=len(samples) < VECTOR_SAMPLE,
        )
        for p in points:
            checked += 1
            text = text_of(layout, p)
            doc_id = doc_id_of(layout, p)
            if text is None:
                n_missing_text += 1
                if len(missing_text) < 5:
                    missing_text.append(p.key)
            if doc_id is None:
                n_missing_id += 1
                if len(missing_id) < 5:
                    missing_id.append(p.key)
            elif layout.id_field is not None:
                if doc_id in seen:
                    dups.append(doc_id)
                seen.add(doc_id)
            _keep_sample(samples, p, doc_id, text)
        bar.update(len(points))
        if cursor is None:
            break
    if n_missing_text:
        raise AdoptedFieldMissing(layout.name, layout.text_field or "(text)", "text",
                                  missing_text, n_missing_text)  # fmt: skip
    if n_missing_id:
        assert layout.id_field is not None
        raise AdoptedFieldMissing(layout.name, layout.id_field, "id", missing_id, n_missing_id)
    if dups:
        assert layout.id_field is not None
        raise AdoptedIdDuplicated(layout.name, layout.id_field, sorted(set(dups)))
    return checked, samples


def _keep_sample(samples: list[tuple[str, str, np.ndarray]], p: RawPoint,
                 doc_id: str | None, text: str | None) -> None:
    if len(samples) < VECTOR_SAMPLE and p.vector is not None and text and doc_id:
        samples.append((doc_id, text, np.asarray(p.vector, dtype=np.float32)))


def _vector_similarity(ws: Workspace, space: str, layout: Layout,
                       samples: list[tuple[str, str, np.ndarray]]) -> float:
    """Median cosine similarity between stored vectors and the space's embeddings of
    their stored texts."""
    emb = ws.embedder(space)
    texts = [t for _, t, _ in samples]
    fresh = np.asarray(emb.embed_documents(texts, [i for i, _, _ in samples]), dtype=np.float32)
    stored = np.stack([v for _, _, v in samples])
    num = (fresh * stored).sum(axis=1)
    den = np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1)
    sims = num / np.maximum(den, 1e-12)
    return float(np.median(sims))
