"""The ``weaviate`` backend (``pip install 'vecver[weaviate]'``): one Weaviate collection
per namespace, native collection aliases (Weaviate 1.32 or later), through the official
``weaviate-client`` v4; or, with ``layout = "named"``, the spaces of a vecver collection
as named vectors of one Weaviate collection (:class:`WeaviateNamedBackend`, no native
aliases). See :class:`WeaviateBackend`; an emulator for tests is
:class:`vecver.testing.emulators.weaviate.WeaviateEmulator`."""

from ._backend import LAYOUTS, VECTOR, WeaviateBackend, class_name
from ._filters import number_property, tokens_of, translate_filter
from ._named import WeaviateNamedBackend

__all__ = [
    "LAYOUTS",
    "VECTOR",
    "WeaviateBackend",
    "WeaviateNamedBackend",
    "class_name",
    "number_property",
    "tokens_of",
    "translate_filter",
]
