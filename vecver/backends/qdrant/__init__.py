"""The ``qdrant`` backend (``pip install 'vecver[qdrant]'``): one Qdrant collection per
namespace, native aliases, on a Qdrant server (``url``) or qdrant-client's local mode
(``location=":memory:"`` or ``path``). See :class:`QdrantBackend`."""

from ._backend import QdrantBackend

__all__ = ["QdrantBackend"]
