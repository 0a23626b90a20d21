"""Connector discovery through entry points: lazy loading, broken plugins, unknown names."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli import app
from segsync.cli import connectors as cli_connectors
from segsync.connector import (
    ConnectorRegistry,
    ConnectorUnavailable,
    UnknownConnector,
    load_object,
)

GOOD_MODULE = '''
from segsync.connector import Capabilities, Connector, ConnectorConfig, TagRepresentation
from segsync.http import RequestStats


class GoodConnector(Connector):
    name = "good"
    title = "Good"
    config_model = ConnectorConfig
    compiler_path = "segsync_fake_good:GoodCompiler"
    capabilities = Capabilities(
        write_batch_size=10, read_page_size=10, membership_batch_size=10,
        max_concurrency=1, tags=TagRepresentation.TAGS, static_segments="tag",
    )

    @property
    def stats(self):
        return RequestStats()

    async def check(self): ...
    async def prepare(self, fields, tags): ...
    async def read(self, cursor=None):
        yield None
    async def write(self, changes): return []
    async def ensure_static(self, name, ref): return "x"
    async def change_static_members(self, ref, add, remove): return []
    async def delete_owned(self, kind, ref): ...


class Misnamed(GoodConnector):
    name = "something-else"


class NotAConnector:
    pass


from segsync.rules.compiler import CompilerCapabilities, RuleCompiler


class GoodCompiler(RuleCompiler):
    platform = "good"
    CAPS = CompilerCapabilities(node_types=frozenset({"compare"}), connectives=frozenset({"and"}))
'''

ENTRY_POINTS = """
[segsync.connectors]
good = segsync_fake_good:GoodConnector
broken = segsync_fake_broken:BrokenConnector
notconn = segsync_fake_good:NotAConnector
misnamed = segsync_fake_good:Misnamed
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution `segsync-fake` on sys.path declaring four connectors, one of them broken."""
    (tmp_path / "segsync_fake_good.py").write_text(GOOD_MODULE)
    (tmp_path / "segsync_fake_broken.py").write_text(
        "raise ImportError('segsync_fake_broken needs libfoo, which is not installed')\n"
    )
    info = tmp_path / "segsync_fake-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: segsync-fake\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("segsync_fake_good", "segsync_fake_broken"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return tmp_path


def fake_only(group: str) -> list[importlib.metadata.EntryPoint]:
    """The entry points of the fake distribution only (the installed ones are not under test)."""
    return [
        ep for ep in importlib.metadata.entry_points(group=group)
        if ep.dist is not None and ep.dist.name == "segsync-fake"
    ]


def test_discovery_lists_every_entry_point_without_importing(fake_distribution: Path) -> None:
    """Discovery reads metadata only: connector modules are imported on first use."""
    registry = ConnectorRegistry(entry_points=fake_only)

    names = registry.names()

    assert names == ["broken", "good", "misnamed", "notconn"]
    assert "segsync_fake_good" not in sys.modules
    assert {e.distribution for e in registry.entries()} == {"segsync-fake"}


def test_the_default_source_is_the_installed_entry_points(fake_distribution: Path) -> None:
    """With no source given, the registry reads `importlib.metadata.entry_points`."""
    names = ConnectorRegistry().names()

    assert {"good", "broken"} <= set(names)


def test_get_loads_a_good_connector(fake_distribution: Path) -> None:
    """`get` imports the module and returns the class."""
    registry = ConnectorRegistry(entry_points=fake_only)

    cls = registry.get("good")

    assert cls.__name__ == "GoodConnector"
    assert cls.compiler_class() is load_object("segsync_fake_good:GoodCompiler")


def test_a_broken_connector_is_unavailable_with_its_reason(fake_distribution: Path) -> None:
    """A connector that fails to import warns once and is listed as unavailable, with why."""
    registry = ConnectorRegistry(entry_points=fake_only)
    entry = next(e for e in registry.entries() if e.name == "broken")

    with pytest.warns(RuntimeWarning, match="libfoo"):
        assert entry.load() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert entry.load() is None  # no second warning

    assert entry.available is False
    assert "ImportError" in (entry.error or "")
    assert entry.describe()["available"] is False
    with pytest.raises(ConnectorUnavailable, match="libfoo"):
        registry.get("broken")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("notconn", "not a segsync Connector subclass"), ("misnamed", "registered as 'misnamed'")],
)
def test_wrong_targets_are_unavailable(fake_distribution: Path, name: str, reason: str) -> None:
    """An entry point naming something other than its own Connector is unavailable."""
    registry = ConnectorRegistry(entry_points=fake_only)

    with pytest.warns(RuntimeWarning), pytest.raises(ConnectorUnavailable, match=reason):
        registry.get(name)


def test_an_unknown_name_suggests_the_closest(fake_distribution: Path) -> None:
    """An unknown name raises UnknownConnector and suggests the closest installed name."""
    registry = ConnectorRegistry(entry_points=fake_only)

    with pytest.raises(UnknownConnector, match="did you mean 'good'"):
        registry.get("goood")
    with pytest.raises(UnknownConnector, match="installed: broken, good") as info:
        registry.get("zzz")
    assert "did you mean" not in str(info.value)


def test_registered_classes_win_and_can_be_removed(fake_distribution: Path) -> None:
    """`register` adds a class without an entry point; `unregister` removes it."""
    registry = ConnectorRegistry(entry_points=fake_only)
    good = registry.get("good")
    renamed = type("Other", (good,), {"name": "other"})

    registry.register(renamed)

    assert registry.get("other") is renamed
    assert "other" in registry.names()
    assert "other" not in [e.name for e in registry.installed()]
    assert "good" in [e.name for e in registry.installed()]
    registry.unregister("other")
    with pytest.raises(UnknownConnector):
        registry.get("other")


def test_load_object_accepts_both_spellings() -> None:
    """`pkg.mod:Attr` and `pkg.mod.Attr` name the same object; nonsense is a ValueError."""
    assert load_object("segsync.connector:ConnectorRegistry") is ConnectorRegistry
    assert load_object("segsync.connector.ConnectorRegistry") is ConnectorRegistry
    with pytest.raises(ValueError, match="import path"):
        load_object("nodots")


@pytest.fixture
def cli_registry(fake_distribution: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectorRegistry:
    registry = ConnectorRegistry(entry_points=fake_only)
    monkeypatch.setattr(cli_connectors, "registry", registry)
    return registry


def test_cli_lists_connectors_as_json(cli_registry: ConnectorRegistry) -> None:
    """`segsync connectors --json` lists every connector, unavailable ones with the reason."""
    result = CliRunner().invoke(app, ["connectors", "--json"])

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == {"good", "broken", "misnamed", "notconn"}
    assert rows["good"]["available"] is True
    assert rows["good"]["capabilities"]["write_batch_size"] == 10
    assert rows["broken"]["available"] is False
    assert "libfoo" in rows["broken"]["error"]


def test_cli_table_shows_unavailable_rows(cli_registry: ConnectorRegistry) -> None:
    """The table names each connector and marks the broken one unavailable."""
    result = CliRunner().invoke(app, ["connectors"], env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    assert "good" in result.output
    assert "unavailable" in result.output
    assert "libfoo" in result.output


def test_cli_capabilities_matrix_from_compilers(cli_registry: ConnectorRegistry) -> None:
    """`segsync segments capabilities --json` reads each available connector's compiler."""
    result = CliRunner().invoke(app, ["segments", "capabilities", "--json"])

    assert result.exit_code == 0, result.output
    matrix = json.loads(result.output)
    assert matrix["compare"] == {"good": True}
    assert matrix["or"] == {"good": False}
    assert matrix["max_depth"] == {"good": 1}


def test_cli_capabilities_markdown_for_chosen_platforms(cli_registry: ConnectorRegistry) -> None:
    """`--markdown -p NAME` prints the page for the chosen platforms; an unknown one is exit 2."""
    result = CliRunner().invoke(app, ["segments", "capabilities", "--markdown", "-p", "good"])

    assert result.exit_code == 0, result.output
    assert "| feature | good |" in result.output
    assert "| compare | yes |" in result.output

    unknown = CliRunner().invoke(app, ["segments", "capabilities", "-p", "nope"])
    assert unknown.exit_code == 2
    assert "not installed: nope" in unknown.output
