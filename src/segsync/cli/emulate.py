"""`segsync emulate PLATFORM`: serve a platform's emulator on 127.0.0.1.

On start it prints the base URL and key, then the `platforms` block of segsync.yaml that
reaches it (the emulator's `client_config()`, e.g. Mailchimp's list id) and its `notes`.

The emulator class comes from the platform connector's `emulator_path` ("module:Class"),
found through the connector registry; `--emulator module:Class` (hidden) names one directly,
for tests and for emulators of connectors under development.

`--seed` takes an integer (the random seed of fault draws and generated data) or an account
fixture: `lived-in` (the one the connector ships) or a YAML/JSON file in the emulator's
fixture schema (`segsync.emulator.fixture`); a fixture that cannot be read or validated
exits 2 with every problem and its place.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import typer

from segsync.cli import EXIT_INVALID, app
from segsync.clock import SystemClock
from segsync.connector import UnknownConnector, registry
from segsync.emulator import Emulator, FaultPlan
from segsync.emulator.fixture import FixtureError, Seedable

__all__ = ["config_snippet", "emulate", "load_emulator", "seed_emulator"]


class EmulatorNotFound(LookupError):
    """No emulator class for the platform asked for; the message says why."""


def _import(path: str) -> Any:
    module_name, sep, attrs = path.partition(":")
    if not sep or not module_name or not attrs:
        raise EmulatorNotFound(f"{path!r} is not an import path like 'package.module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attrs.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as exc:
        raise EmulatorNotFound(f"cannot import {path!r}: {exc}") from None
    return obj


def load_emulator(platform: str, emulator_path: str | None = None) -> type[Emulator]:
    """The emulator class for `platform` (or the one `emulator_path` names).

    Raises:
        EmulatorNotFound: unknown platform (with a did-you-mean), a connector without an
            emulator, or a path that does not name an `Emulator` subclass.
    """
    if emulator_path is None:
        try:
            connector = registry.get(platform)
        except UnknownConnector as exc:
            raise EmulatorNotFound(str(exc)) from None
        if not connector.emulator_path:
            raise EmulatorNotFound(f"connector {platform!r} does not ship an emulator")
        emulator_path = connector.emulator_path
    cls = _import(emulator_path)
    if not (isinstance(cls, type) and issubclass(cls, Emulator)):
        raise EmulatorNotFound(f"{emulator_path!r} is not a segsync Emulator subclass")
    return cls


def config_snippet(platform: str, base_url: str, block: dict[str, Any]) -> str:
    """The segsync.yaml lines that reach an emulator: `base_url` and its `client_config()`
    (key and account objects such as a list id), sorted, values as YAML-safe JSON strings."""
    lines = ["# in segsync.yaml:", "platforms:", f"  {platform}:"]
    lines.append(f"    base_url: {json.dumps(base_url)}")
    lines += [f"    {key}: {json.dumps(value)}" for key, value in sorted(block.items())]
    return "\n".join(lines)


def seed_emulator(emulator: Emulator, fixture: str) -> None:
    """Load `fixture` (a bundled name such as `lived-in`, or a file) into `emulator`.

    Raises:
        FixtureError: the emulator takes no fixture, or the fixture is unreadable or invalid.
    """
    if not isinstance(emulator, Seedable):
        raise FixtureError(fixture, [f"{type(emulator).__name__} cannot start from a fixture"])
    data, source = type(emulator).fixture_data(fixture)
    emulator.load_fixture(data, source=source)


@app.command("emulate")
def emulate(
    platform: str = typer.Argument(
        ..., help="The platform (connector name, as `segsync connectors` lists it)."
    ),
    port: int = typer.Option(8001, "--port", "-p", min=0, max=65535, help="0: any free port."),
    api_key: str | None = typer.Option(
        None, "--api-key", help="The key the emulator accepts (default: the emulator's test key)."
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0.0, help="Added to every answer."),
    faults: str | None = typer.Option(
        None,
        "--faults",
        help="Faults to inject, e.g. '429:0.05,timeout:0.01' or 'rate=0.1,kinds=500+drop' "
        "(format: docs/http.md).",
    ),
    seed: str = typer.Option(
        "0",
        "--seed",
        help="An integer: the seed of fault draws and generated data. Else an account "
        "fixture to start from: 'lived-in' (shipped with the connector) or a YAML/JSON file.",
    ),
    emulator_path: str | None = typer.Option(None, "--emulator", hidden=True),
) -> None:
    """Serve PLATFORM's emulator on 127.0.0.1 until interrupted (Ctrl-C)."""
    try:
        cls = load_emulator(platform, emulator_path)
    except EmulatorNotFound as exc:
        typer.echo(f"segsync emulate: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    fixture: str | None = None
    random_seed = 0
    if re.fullmatch(r"\d+", seed):
        random_seed = int(seed)
    else:
        fixture = seed
    try:
        plan = FaultPlan.parse(faults, seed=random_seed)
    except ValueError as exc:
        typer.echo(f"segsync emulate: --faults: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    emulator = cls(
        api_key=api_key, clock=SystemClock(), latency_ms=latency_ms, faults=plan, seed=random_seed
    )
    if fixture is not None:
        try:
            seed_emulator(emulator, fixture)
        except FixtureError as exc:
            typer.echo(f"segsync emulate: --seed: {exc}", err=True)
            raise typer.Exit(EXIT_INVALID) from None

    def ready(base_url: str) -> None:
        # the key is the user's own emulator key: showing it here is the point
        typer.echo(f"{platform} emulator listening on {base_url}")
        typer.echo(f"base_url: {base_url}")
        typer.echo(f"api key:  {emulator.api_key}")
        if faults:
            typer.echo(f"faults:   {faults} (seed {plan.seed})")
        if fixture is not None:
            typer.echo(f"seeded:   {fixture}")
        typer.echo("")
        typer.echo(config_snippet(platform, base_url, emulator.client_config()))
        for note in cls.notes:
            typer.echo(f"note: {note}")
        typer.echo("Ctrl-C to stop.")

    try:
        emulator.serve(host="127.0.0.1", port=port, on_ready=ready)
    except OSError as exc:
        typer.echo(f"segsync emulate: cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
