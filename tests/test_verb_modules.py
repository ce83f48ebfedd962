"""The verb-module mechanism of the CLI (vecver.verbs): grouped sub-verbs, trailing
underscores, renderers, and the default JSON rendering of a verb without one."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from vecver import cli, verbs
from vecver.cli import render
from vecver.cli.spec import VerbSpecError


@dataclass
class _Listed:
    names: list[str]
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _module(group: str | None, *, rendered: bool) -> types.ModuleType:
    mod = types.ModuleType("vecver.verbs._fake")

    def list_(*, limit: int = 3) -> _Listed:
        """List things.

        :param limit: how many.
        """
        return _Listed(["a", "b", "c"][:limit], limit)

    def show_all(name: str) -> _Listed:
        """Show one thing.

        :param name: its name.
        """
        return _Listed([name], 1)

    for fn in (list_, show_all):
        fn.__module__ = mod.__name__
        setattr(mod, fn.__name__, fn)
    if group:
        mod.GROUP = group  # type: ignore[attr-defined]
    mod.RENDERERS = (  # type: ignore[attr-defined]
        {f"{group + ' ' if group else ''}list": render.Renderer(
            lambda r: "names: " + ",".join(r.names))} if rendered else {})
    return mod


@pytest.fixture
def fake_group(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("thing", rendered=True)
    monkeypatch.setattr(verbs, "modules", lambda: [mod])


def test_grouped_verbs_parse_run_and_render(fake_group: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    specs = cli.verbs()
    assert "thing list" in specs and "thing show-all" in specs
    assert "list" not in specs and "list_" not in specs
    assert cli.main(["thing", "list", "--limit", "2"]) == 0
    assert capsys.readouterr().out.strip() == "names: a,b"
    # no renderer of its own: the result's to_dict() as JSON
    assert cli.main(["thing", "show-all", "x"]) == 0
    assert json.loads(capsys.readouterr().out) == {"names": ["x"], "limit": 1}
    assert cli.main(["thing", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"names": ["a", "b", "c"], "limit": 3}


def test_group_needs_a_sub_verb(fake_group: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["thing"])
    assert e.value.code == 2
    assert "vecver thing" in capsys.readouterr().err


def test_a_verb_module_cannot_redefine_a_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module(None, rendered=False)
    mod.status = mod.show_all  # type: ignore[attr-defined]
    mod.show_all.__name__ = "status"
    monkeypatch.setattr(verbs, "modules", lambda: [mod])
    with pytest.raises(VerbSpecError, match="status"):
        cli.verbs()


def test_listed_modules_import() -> None:
    for m in verbs.modules():
        assert m.__name__.startswith("vecver.verbs."), m
    assert sys.modules["vecver.verbs"] is verbs


def test_the_command_line_needs_no_test_or_database_package() -> None:
    """`pip install vecver` (no test extras, no database clients) still builds the whole
    command line: no verb module imports pytest, a database client or prometheus-client
    when the CLI starts."""
    import subprocess

    blocked = ["pytest", "hypothesis", "qdrant_client", "pymilvus", "weaviate", "pinecone",
               "prometheus_client", "hnswlib", "torch", "sentence_transformers"]
    code = ("import sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "from vecver import cli\n"
            "p = cli.build_parser()\n"
            "assert 'emulator' in cli.verbs() and 'adapter fit' in cli.verbs()\n"
            "import vecver.testing.emulators as e; assert e.kinds()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
