"""Backends: the protocol every vector database maps onto, the plugin registry, and the
backends shipped with vecver (``memory``, the exact reference, and ``local``, hnswlib).

Importing this package imports no database client; a backend module is imported when it
is opened by name (:func:`open_backend`).
"""

from .base import Backend, Capabilities
from .registry import available, get_backend_class, open_backend, register

__all__ = ["Backend", "Capabilities", "available", "get_backend_class", "open_backend", "register"]
