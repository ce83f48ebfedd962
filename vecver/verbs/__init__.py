"""Verb modules: CLI verbs that live beside :mod:`vecver.command`, one module per area.

Each module listed in :data:`MODULES` follows the rules of :mod:`vecver.command` (a public
function is a verb, its signature the arguments, its docstring the help; it returns a
result with ``to_dict()`` and prints nothing) and defines ``RENDERERS``, a mapping from the
full verb name to a :class:`vecver.cli.render.Renderer`. A module that sets ``GROUP`` makes
its functions sub-verbs of that word: ``def fit`` in a module with ``GROUP = "adapter"`` is
``vecver adapter fit``. A trailing underscore is dropped from a function's name
(``def list_`` is the verb ``list``) and ``_`` becomes ``-``.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

#: the verb modules, by their name under :mod:`vecver.verbs`
MODULES: tuple[str, ...] = ("read", "shadow", "stats", "adapter", "drift", "adopt", "emulator")


def modules() -> list[types.ModuleType]:
    """The verb modules, imported (in :data:`MODULES` order)."""
    return [importlib.import_module(f"{__name__}.{m}") for m in MODULES]


def verb_name(module: types.ModuleType, fn: Callable[..., Any]) -> str:
    """The full verb name of ``fn`` in ``module`` (``"adapter fit"``, ``"drift"``)."""
    word = fn.__name__.rstrip("_").replace("_", "-")
    group = getattr(module, "GROUP", None)
    return f"{group} {word}" if group else word


def module_functions(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The verbs ``module`` defines, by full verb name."""
    return {
        verb_name(module, fn): fn
        for fn in vars(module).values()
        if inspect.isfunction(fn) and fn.__module__ == module.__name__
        and not fn.__name__.startswith("_")
    }


def functions() -> dict[str, Callable[..., Any]]:
    """Every verb of every verb module, by full verb name."""
    out: dict[str, Callable[..., Any]] = {}
    for m in modules():
        out.update(module_functions(m))
    return out


def renderers() -> dict[str, Any]:
    """The ``RENDERERS`` of every verb module, merged (full verb name -> Renderer)."""
    out: dict[str, Any] = {}
    for m in modules():
        out.update(getattr(m, "RENDERERS", {}))
    return out
