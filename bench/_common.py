"""What the bench scripts share: pick the vecver tree to measure, and find the pieces of
either layout (before the reshape: ``vecver`` + ``vecver_local`` + ``vecver_memory``;
after: ``vecver.backends.{local,memory,registry}``).

Import this module BEFORE anything that imports vecver. When the environment variable
``VECVER_SRC`` names a source tree (the repository root of a checkout), that tree is put
first on ``sys.path`` (with its ``backends/`` folder when it has one) and the editable-install
finder of the venv is removed from ``sys.meta_path``, so that no module of the installed
checkout can be imported by accident; :func:`describe` then proves where vecver came from.
Without ``VECVER_SRC``, the vecver the interpreter finds is measured.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _select_tree() -> str | None:
    src = os.environ.get("VECVER_SRC")
    if not src:
        return None
    root = Path(src).resolve()
    if not (root / "vecver" / "__init__.py").is_file():
        raise SystemExit(f"VECVER_SRC={src!r} holds no vecver/__init__.py")
    paths = [str(root)]
    if (root / "backends").is_dir():
        paths.append(str(root / "backends"))
    for p in reversed(paths):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    # the venv's editable install of another checkout would otherwise serve any module the
    # chosen tree lacks (vecver.backends.* under the old layout, for example)
    sys.meta_path[:] = [
        f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")
        and "__editable__" not in repr(f)
    ]
    if "vecver" in sys.modules:
        raise SystemExit("bench/_common.py must be imported before vecver")
    return str(root)


TREE = _select_tree()


def child_env() -> dict[str, str]:
    """Environment for a subprocess that must import the same tree (CLI runs)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if TREE:
        extra = [TREE] + ([str(Path(TREE) / "backends")] if (Path(TREE) / "backends").is_dir()
                          else [])
        env["PYTHONPATH"] = os.pathsep.join(extra + [p for p in
                                                    env.get("PYTHONPATH", "").split(os.pathsep)
                                                    if p])
    return env


def _first_module(*names: str) -> ModuleType:
    errors = []
    for n in names:
        try:
            return importlib.import_module(n)
        except ImportError as e:
            errors.append(f"{n}: {e}")
    raise ImportError("none of " + ", ".join(names) + " imports: " + "; ".join(errors))


def registry_module() -> ModuleType:
    return _first_module("vecver.backends.registry", "vecver.registry")


def local_module() -> ModuleType:
    return _first_module("vecver.backends.local", "vecver_local")


def memory_module() -> ModuleType:
    return _first_module("vecver.backends.memory", "vecver_memory")


def base_module() -> ModuleType:
    return _first_module("vecver.backends.base", "vecver.backend")


def local_backend_class() -> type:
    cls: type = local_module().LocalBackend
    return cls


def memory_backend_class() -> type:
    cls: type = memory_module().MemoryBackend
    return cls


def ensure_registered() -> list[str]:
    """Make the registry of the measured tree resolve ``local`` and ``memory`` to the
    classes of that same tree. The venv's entry points were written by the installed
    checkout and may name modules the measured tree does not have (the old layout has no
    ``vecver.backends``); such names are registered at run time instead. Returns the
    names that needed it."""
    reg = registry_module()
    fixed = []
    for name, get_cls in (("local", local_backend_class), ("memory", memory_backend_class)):
        want = get_cls()
        try:
            got = reg.get_backend_class(name)
        except Exception:  # noqa: BLE001 - any failure to resolve means: register it
            got = None
        if got is not want:
            reg.register(name, want)
            fixed.append(name)
    return fixed


def vecver_root() -> Path:
    import vecver

    return Path(vecver.__file__).resolve().parent.parent


def git_rev(root: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "vecver", "backends"], capture_output=True, text=True,
                               check=True).stdout.strip()
        return rev + (f" + {len(dirty.splitlines())} uncommitted changed paths" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def describe() -> str:
    """One line saying which vecver is measured (and proving it came from VECVER_SRC)."""
    import vecver

    root = vecver_root()
    if TREE and root != Path(TREE):
        raise SystemExit(f"VECVER_SRC={TREE} but vecver was imported from {vecver.__file__}")
    local = local_module()
    lroot = Path(local.__file__ or "?").resolve()
    if TREE and Path(TREE) not in lroot.parents:
        raise SystemExit(f"VECVER_SRC={TREE} but the local backend came from {lroot}")
    import hnswlib  # noqa: F401 - its presence is part of the description
    import numpy

    return (f"vecver from {vecver.__file__} (tree {root}, {git_rev(root)}); local backend "
            f"{local.__name__} from {lroot}; python {sys.version.split()[0]}, numpy "
            f"{numpy.__version__}, cores {os.cpu_count()}")


def local_params() -> dict[str, int]:
    """M, ef_construction and ef_search of the local backend, read from its defaults."""
    sig = inspect.signature(local_backend_class())
    out = {}
    for k in ("M", "ef_construction", "ef_search"):
        p = sig.parameters.get(k)
        if p is None or p.default is inspect.Parameter.empty:
            raise SystemExit(f"the local backend has no default for {k!r}: {sig}")
        out[k] = int(p.default)
    return out


def hnsw_space(metric: str) -> str:
    """The hnswlib space the local backend uses for a metric."""
    for modname in ("vecver.backends.local._namespace", "vecver_local._namespace"):
        try:
            table = importlib.import_module(modname)._HNSW_SPACE
            return str(table[metric])
        except (ImportError, AttributeError, KeyError):
            continue
    return {"cosine": "cosine", "dot": "ip", "l2": "l2"}[metric]


# ------------------------------------------------------------------------- corpus + config

WORDS = [
    "market", "bank", "rate", "growth", "film", "music", "award", "election", "party",
    "minister", "match", "team", "season", "player", "phone", "software", "internet", "game",
    "price", "oil", "company", "profit", "share", "court", "police", "report", "people",
    "government", "plan", "deal", "year", "week", "record", "chart", "band", "star", "goal",
    "league", "cup", "coach", "network", "data", "security", "virus", "chip", "device",
    "economy", "inflation", "trade", "export", "tax", "budget", "vote", "labour", "tory",
]


def synthetic_docs(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The corpus of every bench here (same as backfill_bench.py): 20-40 words each."""
    rng = random.Random(seed)
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(20, 40))]
        yield {"id": f"doc{i:08d}", "text": " ".join(words) + f" item {i}",
               "metadata": {"n": i % 100}}


def synthetic_queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(n)]


def write_config(root: Path, dim: int, batch: int) -> Path:
    """vecver.toml: local backend in ./vectors, spaces v1 and v2 (hash embedder, same
    dimension, different seeds), collection ``c`` on v1, ``[backfill] batch_size``."""
    text = (
        '[manifest]\npath = "vecver.db"\n\n'
        '[backend]\nname = "local"\npath = "vectors"\n\n'
        f'[spaces.v1]\nembedder = "hash"\ndimension = {dim}\n\n'
        f'[spaces.v2]\nembedder = "hash"\ndimension = {dim}\noptions = {{ seed = 1 }}\n\n'
        '[collections.c]\nspace = "v1"\n\n'
        f"[backfill]\nbatch_size = {batch}\n"
    )
    cfg = root / "vecver.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def write_jsonl(path: Path, docs: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")


def ingest(cfg: Path, docs: Sequence[dict[str, Any]], batch: int) -> None:
    """Ingest ``docs`` into collection ``c`` (space v1) through the Python API."""
    import vecver

    with vecver.open(cfg, progress=False) as ws:
        coll = ws.collection("c")
        for i in range(0, len(docs), 5000):
            coll.upsert(docs[i : i + 5000], batch_size=batch)


def space_embedder(ws: Any, label: str) -> Any:
    """The SpaceEmbedder of a space label (the same object the core embeds with)."""
    return ws.embedder(label)


def workspace_backend(ws: Any) -> Any:
    """The default backend instance of an open workspace."""
    for attr in ("backend", "default_backend"):
        b = getattr(ws, attr, None)
        if b is not None and not callable(b):
            return b
    backends = getattr(ws, "backends", None)
    if isinstance(backends, dict) and backends:
        return backends.get("default", next(iter(backends.values())))
    raise SystemExit("cannot find the backend of the workspace (neither ws.backend nor "
                     "ws.backends)")


# ------------------------------------------------------------------------- statistics


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return float(s[k])


def spread(xs: Sequence[float]) -> str:
    """min..max and the spread relative to the median, for the noise note."""
    m = median(xs)
    rel = (max(xs) - min(xs)) / m * 100 if m else 0.0
    return f"{min(xs):.3f}..{max(xs):.3f} (spread {rel:.1f}% of the median)"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def wait_quiet(threshold: float | None, max_wait: float) -> str:
    """Sleep until the 1-minute load average is below ``threshold`` (at most ``max_wait``
    seconds; no wait when ``threshold`` is None). Returns a note for the output line."""
    if threshold is None:
        return f"load {loadavg()}"
    import time

    t0 = time.monotonic()
    while os.getloadavg()[0] >= threshold and time.monotonic() - t0 < max_wait:
        time.sleep(5)
    waited = time.monotonic() - t0
    quiet = os.getloadavg()[0] < threshold
    return (f"load {loadavg()} after waiting {waited:.0f}s"
            + ("" if quiet else f" (still >= {threshold}: gave up)"))


def add_wait_flags(parser: Any) -> None:
    parser.add_argument("--wait-load", type=float, default=None, metavar="L",
                        help="before each timed measurement, wait until the 1-minute load "
                             "average is below L (shared machines)")
    parser.add_argument("--max-wait", type=float, default=180.0, metavar="S",
                        help="give up waiting for --wait-load after S seconds (default 180)")


def announce() -> None:
    """Print which tree is measured, registering the shipped backends first when the
    venv's entry points name modules that tree does not have (and say so)."""
    print(describe(), flush=True)
    fixed = ensure_registered()
    if fixed:
        print(f"note: registered {fixed} at run time (the venv's entry points name modules "
              "this tree does not have)", flush=True)
