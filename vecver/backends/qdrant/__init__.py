"""The ``qdrant`` backend (``pip install 'vecver[qdrant]'``) on a Qdrant server (``url``) or
qdrant-client's local mode (``location=":memory:"`` or ``path``): one Qdrant collection
per namespace with native aliases (``layout = "collection"``, the default), or the spaces
of a vecver collection as named vectors of one shared Qdrant collection, switched by the
manifest alias (``layout = "named"``, :mod:`vecver.backends.qdrant._named`). See
:class:`QdrantBackend`."""

from ._backend import QdrantBackend

__all__ = ["QdrantBackend"]
