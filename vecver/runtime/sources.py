"""Sources of documents for ingest and backfill.

A :class:`Source` yields pages of documents in a stable order, each page with a cursor
from which iteration resumes after a crash. Three are built in:

- :class:`NamespaceSource` — the stored text of a namespace (the default backfill source:
  the collection's active space).
- :class:`JsonlSource` — a JSONL file, one ``{"id", "text", "metadata"?}`` per line.
- :class:`IterableSource` — any iterable of documents the user supplies (rows from their
  own database); it must yield the same documents in the same order when iterated again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from ..backends.base import Backend, json_safe_metadata
from ..errors import InvalidInput, SourceError
from ..types import Document

Page = tuple[list[Document], str | None]


class Source(Protocol):
    """A resumable, stably ordered stream of documents."""

    @property
    def name(self) -> str:
        """A description stored with the checkpoint (a resume must use the same source)."""
        ...

    def pages(self, cursor: str | None, size: int) -> Iterator[Page]:
        """Pages after ``cursor`` (None = from the start). Each page comes with the
        cursor that resumes right after it."""
        ...

    def estimate(self) -> int | None:
        """How many documents in all, if cheaply known."""
        ...


def to_document(obj: Document | Mapping[str, Any], where: str = "input") -> Document:
    """Coerce a mapping ``{"id", "text", "metadata"?}`` to a checked :class:`Document`.

    The rules (the same for a JSONL line, an item of an iterable source and a document
    given to ``upsert``): the id is a non-empty string, and nothing is coerced (an
    integer, float, boolean or null id is refused); the text is a string with something
    besides white space (a number is refused with "text must be a string"); metadata is
    an object of JSON values. Raises ``SourceError`` naming ``where``. What could not be
    hashed or stored (a lone surrogate) is refused by :func:`check_storable`."""
    if isinstance(obj, Document):
        doc = obj
    elif isinstance(obj, Mapping):
        if "id" not in obj:
            raise SourceError(where, "missing 'id'")
        if "text" not in obj or obj["text"] is None:
            raise SourceError(where, f"document {obj['id']!r} has no 'text'")
        doc_id = obj["id"]
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        elif not isinstance(meta, Mapping):
            raise SourceError(
                where, f"metadata of document {doc_id!r} must be an object, got {meta!r}"
            )
        doc = Document(doc_id, obj["text"], meta)
    else:
        raise SourceError(where, f"expected an object with id and text, got {type(obj).__name__}")
    if not isinstance(doc.id, str) or not doc.id:
        kind = "" if isinstance(doc.id, str) or doc.id is None else (
            f", not {type(doc.id).__name__} (nothing is coerced: write {str(doc.id)!r})")
        raise SourceError(where, f"invalid id {doc.id!r}: ids are non-empty strings{kind}")
    if not isinstance(doc.text, str):
        raise SourceError(
            where, f"text of document {doc.id!r} must be a string, got {type(doc.text).__name__}"
        )
    if not doc.text.strip():
        raise SourceError(where, f"document {doc.id!r} has empty text")
    try:
        meta = json_safe_metadata(doc.metadata, doc.id)
    except InvalidInput as e:  # say where: the line of a file, the item of a source
        raise SourceError(where, e.message) from e
    return Document(doc.id, doc.text, meta)


class NamespaceSource:
    """Documents stored in a backend namespace, in the backend's stable scan order."""

    def __init__(self, backend: Backend, namespace: str) -> None:
        self.backend = backend
        self.namespace = namespace

    @property
    def name(self) -> str:
        return f"namespace:{self.namespace}"

    def pages(self, cursor: str | None, size: int) -> Iterator[Page]:
        while True:
            page = self.backend.scan(self.namespace, cursor=cursor, limit=size)
            docs = []
            for r in page.records:
                if r.text is None:
                    raise SourceError(
                        self.name,
                        f"record {r.id!r} has no stored text, so it cannot be re-embedded; "
                        "give the backfill a source (--source FILE.jsonl)",
                    )
                docs.append(Document(r.id, r.text, r.metadata))
            if docs or page.next_cursor is None:
                yield docs, (page.next_cursor if page.next_cursor is not None else _END)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def estimate(self) -> int | None:
        return self.backend.count(self.namespace)


#: cursor value meaning "past the end"
_END = "\x00end"


def is_end(cursor: str | None) -> bool:
    return cursor == _END


def _decode_line(line: bytes, where: str, first: bool) -> str:
    """A line of a JSONL file as text: strict UTF-8 (a UTF-8 byte order mark may open
    the file). ``json.loads`` of bytes would let UTF-8-encoded surrogates through."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(
            where, f"not valid UTF-8 (byte {e.start + 1} of the line: {e.reason})"
        ) from e
    return text.removeprefix("\ufeff") if first else text


def _unencodable(value: str) -> int | None:
    """The 1-based position of the first character of ``value`` that does not encode as
    UTF-8 (a lone surrogate, e.g. from a ``\\ud800`` JSON escape), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start + 1
    return None


def check_storable(doc: Document, where: str) -> None:
    """Refuse a document that would pass the checks of :func:`to_document` and then fail
    once written: its id, text and metadata are what is hashed and stored, so each must
    encode as UTF-8 (no lone surrogate) and the metadata must serialise as JSON.
    Raises ``SourceError`` naming ``where``."""
    for what, value in (("id", doc.id), ("text", doc.text)):
        pos = _unencodable(value)
        if pos is not None:
            raise SourceError(
                where,
                f"the {what} of document {doc.id!r} holds a lone surrogate at character "
                f"{pos} (e.g. a \\ud800 escape): it is not Unicode text and cannot be "
                "hashed or stored",
            )
    try:
        json.dumps(doc.metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:  # UnicodeEncodeError is a ValueError
        raise SourceError(
            where, f"the metadata of document {doc.id!r} cannot be stored as JSON text ({e})"
        ) from e


def _parse_line(line: bytes, where: str, first: bool = False) -> Document:
    """One line of a JSONL source as a checked document, refused (``SourceError``) when
    anything in it could not be hashed or stored."""
    text = _decode_line(line, where, first)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(where, f"not valid JSON ({e})") from e
    doc = to_document(obj, where)
    check_storable(doc, where)
    return doc


class JsonlSource:
    """A JSONL file; the cursor is a byte offset, so resuming does not re-read the start."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise SourceError(self.path, "no such file")

    @property
    def name(self) -> str:
        return f"jsonl:{os.path.abspath(self.path)}"

    def pages(self, cursor: str | None, size: int) -> Iterator[Page]:
        if is_end(cursor):
            return
        offset = int(cursor) if cursor else 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            lineno = None if offset else 0
            docs: list[Document] = []
            while True:
                line = f.readline()
                if not line:
                    break
                offset += len(line)
                if lineno is not None:
                    lineno += 1
                where = f"{self.path}:{lineno}" if lineno is not None else f"{self.path}@{offset}"
                if not line.strip():
                    continue
                docs.append(_parse_line(line, where, first=offset == len(line)))
                if len(docs) >= size:
                    yield docs, str(offset)
                    docs = []
            yield docs, _END

    def estimate(self) -> int | None:
        with open(self.path, "rb") as f:
            return sum(1 for line in f if line.strip())

    def validate(self) -> int:
        """Read the whole file once and check every line; returns the document count.

        Raises ``SourceError`` naming the first bad line (not UTF-8, bad JSON, a missing
        or invalid id or text, metadata that is not a JSON object, a lone surrogate in
        what would be hashed or stored, a duplicate id), before anything is written: a
        file that passes is one that :meth:`pages` yields without error.
        """
        seen: dict[str, int] = {}
        with open(self.path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{self.path}:{lineno}"
                d = _parse_line(line, where, first=lineno == 1)
                if d.id in seen:
                    raise SourceError(
                        where, f"duplicate id {d.id!r} (first on line {seen[d.id]})"
                    )
                seen[d.id] = lineno
        return len(seen)


class IterableSource:
    """Documents from any re-iterable of ``Document`` or mappings; the cursor counts
    documents consumed, so the iterable must yield the same order every time. A backfill
    iterates it in a background thread (embedding overlaps writing): a database
    connection behind it must allow use from another thread."""

    def __init__(self, docs: Iterable[Document | Mapping[str, Any]], name: str = "iterable"):
        self.docs = docs
        self._name = name

    @property
    def name(self) -> str:
        return f"iterable:{self._name}"

    def pages(self, cursor: str | None, size: int) -> Iterator[Page]:
        if is_end(cursor):
            return
        skip = int(cursor) if cursor else 0
        n = 0
        page: list[Document] = []
        for obj in self.docs:
            n += 1
            if n <= skip:
                continue
            page.append(to_document(obj, f"{self.name} item {n}"))
            if len(page) >= size:
                yield page, str(n)
                page = []
        yield page, _END

    def estimate(self) -> int | None:
        try:
            return len(self.docs)  # type: ignore[arg-type]
        except TypeError:
            return None
