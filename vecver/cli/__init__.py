"""The ``vecver`` command line, generated from :mod:`vecver.command`.

Every public function of :mod:`vecver.command` is a verb (plus ``demo``, from
:func:`vecver.demo.run_demo`); its positional parameters are positional arguments, its
keyword-only parameters options, and its docstring the help (the rules are in
:mod:`vecver.command`'s docstring and :mod:`vecver.cli.spec`). Results are shown by
:mod:`vecver.cli.render`; ``--json`` on every verb prints the result's ``to_dict()``.

Exit status (:data:`EXIT_CODES`, first matching class wins): 0 success; 2 bad input or
usage (an argument, an input file, an unknown collection or space); 3 refused by the
lifecycle or the gate (not ready, gate failed, no previous space, lease held, not
abortable); 4 a configuration or manifest problem (anything wrong while reading the
config file, a space whose geometry changed under its label, an unknown or uninstalled
backend, a corrupt, foreign, read-only or full manifest); 1 any other error (a backend or
an embedder failed; a backfill or verify that did not end clean); 130 interrupted; 141
stdout closed. Every refusal or error prints one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .. import command
from ..config import DEFAULT_NAME, Config
from ..errors import (
    ConfigError,
    InvalidInput,
    ManifestError,
    SpaceConflict,
    StateError,
    UnknownCollection,
    UnknownSpace,
    VecverError,
)
from ..runtime.progress import PHASE_LOGGER
from . import render
from .spec import ArgSpec, VerbSpec, VerbSpecError, verb_functions, verb_spec

#: exit status and stderr prefix by error class; the first class that matches wins
EXIT_CODES: tuple[tuple[type[BaseException], int, str], ...] = (
    (SpaceConflict, 4, "error"),
    (ConfigError, 4, "error"),
    (ManifestError, 4, "error"),
    (StateError, 3, "refused"),
    (InvalidInput, 2, "error"),
    (UnknownCollection, 2, "error"),
    (UnknownSpace, 2, "error"),
    (VecverError, 1, "error"),
)


class ConfigLoadError(VecverError):
    """Anything wrong found while reading the config file (exit 4, whatever its class)."""

    def __init__(self, cause: VecverError) -> None:
        self.cause = cause
        super().__init__(cause.message, hint=cause.hint)


def exit_code(err: BaseException) -> tuple[int, str]:
    """The exit status and stderr prefix (``error`` or ``refused``) of an error."""
    if isinstance(err, ConfigLoadError):
        return 4, "error"
    for cls, code, word in EXIT_CODES:
        if isinstance(err, cls):
            return code, word
    return 1, "error"


def verbs() -> dict[str, VerbSpec]:
    """Every verb of the command line, by name: the public functions of
    :mod:`vecver.command`, and ``demo``."""
    from .. import verbs as verb_modules
    from ..demo import run_demo

    fns: dict[str, Callable[..., Any]] = dict(verb_functions(command))
    fns["demo"] = run_demo
    for name, fn in verb_modules.functions().items():
        if name in fns or name.split(" ")[0] in fns:
            raise VerbSpecError(f"verb {name!r} is defined twice")
        fns[name] = fn
    return {name: verb_spec(name, fn) for name, fn in fns.items()}


# ----------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), naming where to find help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vecver: error: {message} (see `{self.prog} --help`)\n")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _typed(typ: type) -> Callable[[str], Any]:
    """argparse's converter for int/float/str, with a name argparse shows in errors."""
    def convert(text: str) -> Any:
        return typ(text)

    convert.__name__ = typ.__name__
    return convert


def _add_global_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--config``, ``--quiet`` and ``--verbose``: on the main parser, and again on every
    verb (``suppress``: absent there means "as given before the verb")."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--config", "-c", metavar="FILE",
                   help=f"config file (default: ./{DEFAULT_NAME})", **kw)
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress output, no phase lines", **kw)
    p.add_argument("--verbose", "-v", action="store_true", help="log details to stderr", **kw)


def _add_argument(sp: argparse.ArgumentParser, a: ArgSpec) -> None:
    if a.kind == "positional":
        assert a.type is not None
        sp.add_argument(a.name, type=_typed(a.type), metavar=a.metavar, help=a.help)
        return
    kw: dict[str, Any] = {"dest": a.name, "help": a.help, "required": a.required}
    if a.kind == "flag":
        kw["action"] = "store_true"
    else:
        assert a.metavar is not None
        kw["metavar"] = a.metavar
        kw["type"] = _json_object if a.kind == "json" else _typed(a.type or str)
        kw["default"] = a.default
        if a.default is not None and not a.required:
            kw["help"] = f"{a.help.rstrip('.')} (default: {a.default})"
    sp.add_argument(*a.flags, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``vecver``: one sub-command per verb of :func:`verbs`."""
    p = _Parser(
        prog="vecver",
        description="Versioned embedding spaces: safe, resumable, reversible embedding-model "
        "migrations for vector databases.",
    )
    _add_global_options(p, suppress=False)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    groups: dict[str, Any] = {}
    for name, spec in verbs().items():
        parent, word = sub, name
        if " " in name:  # a sub-verb: ``vecver GROUP WORD``
            group, word = name.split(" ", 1)
            if group not in groups:
                gp = sub.add_parser(group, help=f"{group} verbs (see `vecver {group} --help`)")
                groups[group] = gp.add_subparsers(dest=f"_{group}_verb", required=True,
                                                  metavar="VERB")
            parent = groups[group]
        sp = parent.add_parser(word, help=spec.doc.headline, description=spec.doc.description)
        sp.set_defaults(_verb=spec)
        for a in spec.args:
            _add_argument(sp, a)
        sp.add_argument("--json", action="store_true", dest="_json",
                        help="print the result as JSON")
        _add_global_options(sp, suppress=True)
    return p


# ----------------------------------------------------------------------------- running


def _load_config(args: argparse.Namespace) -> Config:
    try:
        return Config.load(args.config) if args.config else Config.find()
    except VecverError as e:
        raise ConfigLoadError(e) from e


def call_arguments(
    spec: VerbSpec, args: argparse.Namespace
) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments ``spec.function`` is called with for the
    parsed ``args`` (the config is loaded here)."""
    pos: list[Any] = []
    kw: dict[str, Any] = {}
    if "config" in spec.context:
        pos.append(_load_config(args))
    elif "config_path" in spec.context:
        pos.append(args.config or DEFAULT_NAME)
    if "progress" in spec.context:
        kw["progress"] = False if args.quiet else None
    for a in spec.args:
        value = getattr(args, a.name)
        if a.positional:
            pos.append(value)
        else:
            kw[a.name] = value
    return pos, kw


def _setup_logging(quiet: bool, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="vecver: %(levelname)s: %(message)s",
    )
    phases = logging.getLogger(PHASE_LOGGER)
    phases.propagate = False
    phases.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vecver: %(message)s"))
    phases.addHandler(handler)
    phases.setLevel(logging.WARNING if quiet else logging.INFO)


def _run(spec: VerbSpec, args: argparse.Namespace) -> int:
    pos, kw = call_arguments(spec, args)
    as_json = bool(args._json)
    if "on_step" in spec.python_only:  # the demo's steps, as they happen
        out = sys.stderr if as_json else sys.stdout
        kw["on_step"] = lambda line: print(line, file=out, flush=True)
    result = spec.function(*pos, **kw)
    render.print_result(spec.name, result, as_json=as_json)
    rc, why = render.renderer(spec.name).status(result, vars(args))
    if why:
        print(f"vecver: {why}", file=sys.stderr)
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vecver ARGS``; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.quiet, args.verbose)
    try:
        rc = _run(args._verb, args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:
        # the reader went away (`vecver history docs --json | head`): stop quietly
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
    except VecverError as e:
        code, word = exit_code(e)
        print(f"vecver: {word}: {e}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("vecver: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
