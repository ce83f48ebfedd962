"""The ``python:package.module:attribute`` embedder: any Python callable as a model.

The attribute (a dotted path inside the module is allowed: ``module:Class.factory``) is
either

- a function ``f(texts: list[str]) -> array-like (n, d)``; ``options`` must then be empty
  (a function takes none), or
- a class: it is instantiated once, lazily, as ``cls(**options)``, and its ``embed``
  method — or, without one, the instance itself (``__call__``) — is the function. All
  options then enter the fingerprint, since any constructor argument may change geometry.

The revision is ``spec.revision`` when the config gives one, else the object's ``revision``
attribute when it is a string (the function's or the class's; for a class whose
``revision`` is an instance property, the instance's), else ``"python:<module>:<attr>"``.
That last form names the code, not the weights: **it cannot detect a change of the weights
the callable uses**. Pin ``revision`` in the config (or expose a ``revision`` attribute)
and change it whenever the model changes, or old and new vectors will be mixed.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..space import SpaceSpec
from ..types import Matrix
from . import Embedder

PREFIX = "python:"


def parse_target(embedder: str) -> tuple[str, str]:
    """``"python:pkg.mod:attr"`` -> ``("pkg.mod", "attr")``; ConfigError when malformed."""
    body = embedder[len(PREFIX):] if embedder.startswith(PREFIX) else embedder
    module, sep, attr = body.partition(":")
    if not sep or not module.strip() or not attr.strip() or ":" in attr:
        raise ConfigError(
            f"invalid embedder {embedder!r}",
            hint="use python:package.module:attribute, e.g. python:mypkg.models:embed",
        )
    return module.strip(), attr.strip()


def import_target(embedder: str) -> Any:
    """Import the module and return the attribute; ConfigError naming what failed."""
    module_name, attr = parse_target(embedder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"embedder {embedder!r}: cannot import module {module_name!r} ({e})",
            hint="check that the module is installed or on sys.path/PYTHONPATH of this Python, "
            "and that its name is spelled right",
        ) from e
    except Exception as e:  # noqa: BLE001 - the module itself failed while importing
        raise ConfigError(
            f"embedder {embedder!r}: importing module {module_name!r} failed: "
            f"{type(e).__name__}: {e}",
            hint="fix the error in that module",
        ) from e
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise ConfigError(
                f"embedder {embedder!r}: module {module_name!r} has no attribute {attr!r}",
                hint="check the name after the ':'",
            ) from e
    if not callable(obj):
        raise ConfigError(
            f"embedder {embedder!r}: {attr!r} is a {type(obj).__name__}, not a callable",
            hint="point at a function f(list[str]) -> array (n, d) or at a class",
        )
    return obj


class CallableEmbedder(Embedder):
    """``embedder = "python:package.module:attribute"`` (see the module docstring).

    The module is imported when the embedder is created (so a typo fails at start-up); a
    class is instantiated on the first :meth:`embed` or when :meth:`revision` needs the
    instance, under a lock. Output is converted to float32; its shape is checked by the
    space.
    """

    kind = "python"

    def __init__(self, spec: SpaceSpec) -> None:
        super().__init__(spec)
        self.target_name = spec.embedder[len(PREFIX):]
        self._target = import_target(spec.embedder)
        self._is_class = inspect.isclass(self._target)
        if not self._is_class and spec.options:
            raise ConfigError(
                f"space {spec.label!r}: options are given but {self.target_name!r} is a "
                "function, which takes none",
                hint="remove 'options', or point at a class that accepts them",
            )
        self._lock = threading.Lock()
        self._instance: Any = None
        self._fn: Callable[[list[str]], Any] | None = None if self._is_class else self._target

    def _function(self) -> Callable[[list[str]], Any]:
        with self._lock:
            if self._fn is None:
                try:
                    self._instance = self._target(**dict(self.spec.options))
                except TypeError as e:
                    raise ConfigError(
                        f"space {self.spec.label!r}: cannot create {self.target_name!r} "
                        f"with options {dict(self.spec.options)!r}: {e}",
                        hint="options are passed to the class as keyword arguments",
                    ) from e
                method = getattr(self._instance, "embed", None)
                self._fn = method if callable(method) else self._instance
            assert self._fn is not None
            return self._fn

    def revision(self) -> str:
        if self.spec.revision:
            return str(self.spec.revision)
        rev = getattr(self._target, "revision", None)
        if isinstance(rev, str) and rev:
            return rev
        if self._is_class and rev is not None:  # e.g. a property: ask the instance
            self._function()
            rev = getattr(self._instance, "revision", None)
            if isinstance(rev, str) and rev:
                return rev
        return PREFIX + self.target_name

    def geometry_options(self) -> dict[str, Any]:
        return dict(self.spec.options) if self._is_class else {}

    def embed(self, texts: Sequence[str]) -> Matrix:
        out = self._function()(list(texts))
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            inst, self._instance = self._instance, None
            if self._is_class:
                self._fn = None
        closer = getattr(inst, "close", None)
        if callable(closer):
            closer()
