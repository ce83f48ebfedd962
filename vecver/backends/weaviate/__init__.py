"""The ``weaviate`` backend (``pip install 'vecver[weaviate]'``): one Weaviate collection
per namespace, native collection aliases (Weaviate 1.32 or later), through the official
``weaviate-client`` v4. See :class:`WeaviateBackend`; an emulator for tests is
:class:`vecver.testing.emulators.weaviate.WeaviateEmulator`."""

from ._backend import VECTOR, WeaviateBackend, class_name
from ._filters import number_property, tokens_of, translate_filter

__all__ = [
    "VECTOR",
    "WeaviateBackend",
    "class_name",
    "number_property",
    "tokens_of",
    "translate_filter",
]
