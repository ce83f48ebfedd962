"""Size of the shipped backends and of the surface a new backend must implement.

    python bench/size_report.py [--json]
    VECVER_SRC=/work/before python bench/size_report.py   # measure another tree

For the memory and the local backend (whatever module the measured tree ships them in:
``vecver.backends.{memory,local}`` or ``vecver_memory`` / ``vecver_local``), and for the
backend base module for context: the ``.py`` files, their lines as ``wc -l`` counts them,
the non-blank non-comment lines, and the same without docstrings. Then the abstract
methods of the ``Backend`` base class (what a new backend must implement; the base's
concrete methods come for free) and, for each shipped backend, the public and private
methods its own classes define.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported


def files_of(module: ModuleType) -> list[Path]:
    """The .py files of a module (all of them under a package's folder)."""
    f = Path(module.__file__ or "").resolve()
    if hasattr(module, "__path__"):
        return sorted(p for p in f.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [f]


def docstring_lines(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                end = body[0].end_lineno or body[0].lineno
                out.update(range(body[0].lineno, end + 1))
    return out


def count(path: Path) -> dict[str, int]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    code = [i for i, ln in enumerate(lines, 1)
            if ln.strip() and not ln.strip().startswith("#")]
    docs = docstring_lines(ast.parse(text))
    return {"wc_l": text.count("\n"), "code": len(code),
            "code_no_docstrings": len([i for i in code if i not in docs])}


def measure(module: ModuleType, root: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for f in files_of(module):
        c = count(f)
        try:
            rel = str(f.relative_to(root))
        except ValueError:
            rel = str(f)
        rows.append({"file": rel, **c})
    total = {k: sum(r[k] for r in rows) for k in ("wc_l", "code", "code_no_docstrings")}
    return {"module": module.__name__, "files": rows, "total": total}


def own_methods(module: ModuleType, base: type) -> dict[str, list[str]]:
    """Methods defined in the body of each Backend subclass of a backend's module(s)."""
    out: dict[str, list[str]] = {}
    mods = [module]
    if hasattr(module, "__path__"):
        prefix = module.__name__ + "."
        mods += [m for n, m in sorted(sys.modules.items())
                 if n.startswith(prefix) and m is not None]
    for m in mods:
        for name, obj in vars(m).items():
            if (isinstance(obj, type) and issubclass(obj, base) and obj is not base
                    and obj.__module__ == m.__name__):
                meths = [k for k, v in vars(obj).items()
                         if inspect.isfunction(v) or isinstance(v, property | staticmethod
                                                                 | classmethod)]
                out[f"{m.__name__}.{name}"] = sorted(meths)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="also print one JSON line")
    args = p.parse_args()
    print(C.describe())
    root = C.vecver_root()
    base_mod = C.base_module()
    base: type = base_mod.Backend
    parts = {"memory backend": C.memory_module(), "local backend": C.local_module(),
             "backend base (context)": base_mod}
    with contextlib.suppress(ImportError):
        parts["_remote helpers (context)"] = C._first_module("vecver.backends._remote")
    result: dict[str, Any] = {}
    print(f"\n{'':28} {'files':>5} {'wc -l':>7} {'code':>7} {'code w/o docstrings':>20}")
    for label, mod in parts.items():
        m = measure(mod, root)
        result[label] = m
        t = m["total"]
        print(f"{label:28} {len(m['files']):>5} {t['wc_l']:>7} {t['code']:>7} "
              f"{t['code_no_docstrings']:>20}   ({m['module']})")
        for r in m["files"]:
            print(f"{'':30}{r['file']}: {r['wc_l']} / {r['code']} / {r['code_no_docstrings']}")
    abstract = sorted(getattr(base, "__abstractmethods__", frozenset()))
    concrete = sorted(k for k, v in vars(base).items()
                      if inspect.isfunction(v) and k not in abstract)
    result["abstract_methods"] = abstract
    result["base_concrete_methods"] = concrete
    print(f"\na new backend must implement {len(abstract)} abstract methods of "
          f"{base.__module__}.Backend: {', '.join(abstract)}")
    print(f"the base provides {len(concrete)} concrete methods: {', '.join(concrete)}")
    for label in ("memory backend", "local backend"):
        own = own_methods(parts[label], base)
        result[label]["classes"] = own
        for cls, meths in own.items():
            pub = [x for x in meths if not x.startswith("_") or x in ("__init__",)]
            print(f"{cls} defines {len(meths)} methods ({len(pub)} public incl. __init__): "
                  f"{', '.join(meths)}")
    if args.json:
        print(json.dumps({"bench": "size", **result}))


if __name__ == "__main__":
    main()
