"""``python bench/_cli_shim.py ARGS`` == ``python -m vecver ARGS`` for the tree chosen by
``VECVER_SRC`` (see _common.py), with the backends of that tree registered when the venv's
entry points name modules it does not have. Used by migrate_bench.py for the CLI runs."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402 - must run before vecver is imported

if __name__ == "__main__":
    _common.describe()  # refuses to run when vecver came from another tree
    _common.ensure_registered()
    sys.argv[0] = "vecver"
    runpy.run_module("vecver", run_name="__main__", alter_sys=True)
