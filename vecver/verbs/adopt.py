"""``vecver adopt``: an existing collection, filled by other code, as space v1 of a new
vecver collection, without copying (:mod:`vecver.ops.adopt`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; the result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here.
"""

from __future__ import annotations

from ..cli.render import Renderer
from ..config import Config
from ..ops import adopt as _adopt
from ..runtime.workspace import Workspace

__all__ = ["RENDERERS", "adopt"]


def adopt(
    config: Config,
    collection: str,
    *,
    namespace: str,
    space: str,
    text_field: str | None = None,
    id_field: str | None = None,
    vector_field: str | None = None,
    on: str | None = None,
    read_only: bool = False,
    check_all: bool = False,
    skip_vector_check: bool = False,
    progress: bool | None = None,
) -> _adopt.AdoptReport:
    """Adopt an existing collection as the active space of a new collection, without
    copying it.

    The collection keeps its own keys, id and text fields. Checked first (nothing is
    recorded when a check fails): it exists, its dimension and metric are the space's,
    the text (and id) field is on its objects (the first 10,000, or all with
    --check-all), ids are unique, and a sample of its vectors matches the space's
    embeddings of its texts. Then migrate, backfill, verify, cutover and rollback work as
    for any collection; backfill reads the texts from the text field. vecver writes to
    the adopted collection only the collection's own writes (upsert, delete), in its own
    layout; never during adopt, backfill, verify, cutover or rollback.

    :param collection: the name of the new vecver collection (on a database with
        aliases, the alias readers query; it must differ from the adopted name).
    :param namespace: the existing collection to adopt (its name on the database).
    :metavar namespace: EXISTING
    :param space: the space (declared in the config) whose model filled it.
    :metavar space: LABEL
    :param text_field: the field holding each document's text (required but on the
        local backend, which has a text slot of its own).
    :metavar text_field: FIELD
    :param id_field: the field holding each document's id (default: the collection's
        own keys are the ids).
    :metavar id_field: FIELD
    :param vector_field: the vector the space filled, in a collection with several
        named vectors (writes then set that vector and keep the others).
    :metavar vector_field: NAME
    :param on: the backend instance holding it (default: the default one).
    :metavar on: INSTANCE
    :param read_only: never write to the collection: writes of the new collection are
        refused while the adopted space is live.
    :param check_all: check every object for the fields (default: the first 10,000).
    :param skip_vector_check: do not compare stored vectors with the space's embeddings.
    """
    with Workspace(config) as ws:
        return _adopt.adopt(
            ws, collection, namespace=namespace, space=space, text_field=text_field,
            id_field=id_field, vector_field=vector_field, on=on, read_only=read_only,
            check_limit=None if check_all else _adopt.CHECK_LIMIT,
            vector_check=not skip_vector_check, progress=progress,
        )


def _text_adopt(r: _adopt.AdoptReport) -> str:
    fields = f"text field {r.text_field!r}" if r.text_field else "the stored text"
    ids = f"id field {r.id_field!r}" if r.id_field else f"its own {r.id_type} keys as ids"
    lines = [
        f"adopted {r.namespace} ({r.documents} documents, {r.dimension}-d {r.metric}) on "
        f"{r.instance} as space {r.space} of collection {r.collection}, active",
        f"  reads {fields}, {ids}; checked {r.checked} objects"
        + (f"; vector check: median cosine {r.similarity:.3f} over {r.sample}"
           if r.similarity is not None else "; vector check skipped"),
        "  writes of the collection go into it in its own layout" if r.writes == "layout"
        else "  read-only: vecver never writes to it",
    ]
    if r.alias:
        lines.append(f"  database alias {r.collection} -> {r.namespace}")
    return "\n".join(lines)


RENDERERS: dict[str, Renderer] = {"adopt": Renderer(_text_adopt)}
