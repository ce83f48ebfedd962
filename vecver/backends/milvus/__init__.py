"""The Milvus backend (``pip install 'vecver[milvus]'``): one Milvus collection per
namespace, on a Milvus server (``uri="http://HOST:19530"``, ``token``) or offline in a
Milvus Lite file (``uri="./vecver.db"``). See :class:`MilvusBackend`."""

from __future__ import annotations

from ._backend import MilvusBackend, MilvusLiteBackend
from ._expr import FILTER_FIELD, filter_keys, string_literal, translate_filter

__all__ = [
    "FILTER_FIELD",
    "MilvusBackend",
    "MilvusLiteBackend",
    "filter_keys",
    "string_literal",
    "translate_filter",
]
