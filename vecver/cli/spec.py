"""How a verb function becomes a command line: its docstring read as help, its
signature as arguments. The rules are stated in :mod:`vecver.command`'s docstring; this
module applies them and refuses (``VerbSpecError``) a function they do not cover, so a
verb cannot be added or changed without its command line following."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: parameters the command line fills from its global options, never from an option of
#: their own: the config (``--config``), its unread path, and ``--quiet``
CONTEXT_PARAMETERS = ("config", "config_path", "progress")

#: a ``:param`` text that starts so marks a parameter with no command-line form
PYTHON_ONLY = "Python only"

_FIELD = re.compile(r"^:(param|metavar)\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$")


class VerbSpecError(Exception):
    """A verb function whose signature or docstring the command line cannot follow (a
    developer error, caught by the tests)."""


@dataclass(frozen=True)
class Doc:
    """A verb's docstring: ``summary`` (first paragraph), ``description`` (everything
    before the fields), and per-parameter ``params`` help and ``metavars``."""

    summary: str
    description: str
    params: Mapping[str, str] = field(default_factory=dict)
    metavars: Mapping[str, str] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        """The first sentence of the summary, for ``vecver --help``."""
        first = self.summary.split(". ")[0].rstrip(".")
        return first


def _plain(text: str) -> str:
    """reST to terminal text: ``literal`` -> literal."""
    return text.replace("``", "")


def parse_doc(doc: str | None) -> Doc:
    """Read a docstring in the format of :mod:`vecver.command`."""
    lines = inspect.cleandoc(doc or "").splitlines()
    body: list[str] = []
    params: dict[str, str] = {}
    metavars: dict[str, str] = {}
    current: tuple[str, str] | None = None
    for line in lines:
        m = _FIELD.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if m:
            kind, name, text = m.groups()
            target = params if kind == "param" else metavars
            if name in target:
                raise VerbSpecError(f":{kind} {name}: is given twice")
            target[name] = text.strip()
            current = (kind, name)
        elif current is not None:
            if line.strip():
                kind, name = current
                target = params if kind == "param" else metavars
                target[name] = f"{target[name]} {line.strip()}".strip()
            else:
                current = None
        elif not params and not metavars:
            body.append(line)
        elif line.strip():
            raise VerbSpecError(f"text after the fields of a docstring: {line.strip()!r}")
    paragraphs = [" ".join(p.split()) for p in "\n".join(body).strip().split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    summary = _plain(paragraphs[0]) if paragraphs else ""
    return Doc(
        summary=summary,
        description="\n\n".join(_plain(p) for p in paragraphs),
        params={k: _plain(v) for k, v in params.items()},
        metavars=metavars,
    )


@dataclass(frozen=True)
class ArgSpec:
    """One command-line argument of a verb, derived from one parameter."""

    name: str  # the parameter
    flags: tuple[str, ...]  # () for a positional argument
    kind: str  # "positional" | "flag" | "value" | "json"
    type: type | None  # int, float or str for "positional" and "value"
    required: bool
    default: Any
    help: str
    metavar: str | None

    @property
    def positional(self) -> bool:
        return not self.flags


@dataclass(frozen=True)
class VerbSpec:
    """A verb: its function, docstring, arguments, and how it is called."""

    name: str
    function: Callable[..., Any]
    doc: Doc
    args: tuple[ArgSpec, ...]
    context: tuple[str, ...]  # the CONTEXT_PARAMETERS it takes
    python_only: tuple[str, ...]  # parameters with no command-line form


def option_flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``; ``k`` -> ``-k``; a trailing ``_`` (a Python
    keyword or builtin as a name) is dropped: ``from_`` -> ``--from``."""
    name = name.rstrip("_") or name
    return f"-{name}" if len(name) == 1 else "--" + name.replace("_", "-")


def _value_type(annotation: Any) -> tuple[str, type | None, bool]:
    """(kind, type, optional) of an annotation, or VerbSpecError."""
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            annotation = rest[0]
        elif str in rest:  # str | os.PathLike[str]: a path, given as text
            annotation = str
        else:
            raise VerbSpecError(f"no command-line form for {annotation!r}")
    origin = typing.get_origin(annotation) or annotation
    if annotation is bool:
        return "flag", None, optional
    if annotation in (int, float, str):
        return "value", annotation, optional
    if origin in (dict, Mapping):
        return "json", None, optional
    raise VerbSpecError(f"no command-line form for {annotation!r}")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' annotations, evaluated (the return annotation is not needed)."""
    out: dict[str, Any] = {}
    globalns = getattr(fn, "__globals__", {})
    for p in inspect.signature(fn).parameters.values():
        ann = p.annotation
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns)  # noqa: S307 - our own annotations
            except Exception as e:
                raise VerbSpecError(f"{fn.__name__}: cannot read the annotation of "
                                    f"{p.name!r}: {e}") from e
        out[p.name] = ann
    return out


def verb_spec(name: str, fn: Callable[..., Any]) -> VerbSpec:
    """The command line of one verb function (``VerbSpecError`` when the rules of
    :mod:`vecver.command` do not cover it)."""
    doc = parse_doc(fn.__doc__)
    if not doc.summary:
        raise VerbSpecError(f"{name}: no docstring")
    hints = _hints(fn)
    args: list[ArgSpec] = []
    context: list[str] = []
    python_only: list[str] = []
    params = list(inspect.signature(fn).parameters.values())
    for i, p in enumerate(params):
        where = f"{name}({p.name})"
        if p.name in CONTEXT_PARAMETERS:
            if p.name != "progress" and i != 0:
                raise VerbSpecError(f"{where}: the config comes first")
            context.append(p.name)
            continue
        text = doc.params.get(p.name)
        if text is None:
            raise VerbSpecError(f"{where}: no ':param {p.name}:' in the docstring")
        if text.startswith(PYTHON_ONLY):
            if p.default is inspect.Parameter.empty or p.kind is not p.KEYWORD_ONLY:
                raise VerbSpecError(f"{where}: a Python-only parameter is a keyword with "
                                    "a default")
            python_only.append(p.name)
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise VerbSpecError(f"{where}: *args and **kwargs have no command-line form")
        try:
            kind, typ, optional = _value_type(hints[p.name])
        except VerbSpecError as e:
            raise VerbSpecError(f"{where}: {e}") from None
        has_default = p.default is not inspect.Parameter.empty
        metavar = doc.metavars.get(p.name, p.name.rstrip("_").upper() or p.name.upper())
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if kind != "value" or has_default:
                raise VerbSpecError(f"{where}: a positional argument is a str, int or "
                                    "float without a default")
            args.append(ArgSpec(p.name, (), "positional", typ, True, None, text, metavar))
            continue
        if kind == "flag" and p.default is not False:
            raise VerbSpecError(f"{where}: a flag defaults to False")
        if not has_default and (kind == "flag" or optional):
            raise VerbSpecError(f"{where}: a required option is not a flag nor optional")
        args.append(ArgSpec(
            p.name, (option_flag(p.name),), kind, typ, not has_default,
            p.default if has_default else None, text, None if kind == "flag" else metavar,
        ))
    extra = set(doc.params) - {p.name for p in params}
    extra |= set(doc.metavars) - {p.name for p in params}
    if extra:
        raise VerbSpecError(f"{name}: the docstring documents no such parameter: "
                            + ", ".join(sorted(extra)))
    return VerbSpec(name, fn, doc, tuple(args), tuple(context), tuple(python_only))


def verb_functions(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """Every public function defined in ``module``, by its verb name (``_`` -> ``-``)."""
    return {
        fn.__name__.replace("_", "-"): fn
        for fn in vars(module).values()
        if inspect.isfunction(fn) and fn.__module__ == module.__name__
        and not fn.__name__.startswith("_")
    }
