"""`segsync emulate`: finds the emulator, serves it on 127.0.0.1, prints the URL and key."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from typer.testing import CliRunner

from segsync.cli import app
from segsync.cli.emulate import EmulatorNotFound, load_emulator
from segsync.emulator import Emulator

KEY = "sk-FAKE-segsync-0123456789abcdef"
HERE = Path(__file__).resolve().parent
TEMPLATE_SRC = HERE.parent / "examples" / "connector-template" / "src"


class PingEmulator(Emulator):
    """Answers GET /v9/ping with the platform's greeting; errors as {"oops": message}."""

    platform = "ping"
    default_api_key = "ping-default-key"
    base_path = "/v9"

    def routes(self) -> Sequence[BaseRoute]:
        async def ping(request: Request) -> Response:
            return JSONResponse({"pong": True, "faults": self.faults.per_kind})

        return [Route("/v9/ping", ping)]

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        return JSONResponse({"oops": message, "code": code}, status_code=status)


class NotAnEmulator:
    pass


@contextlib.contextmanager
def emulate(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Run `segsync emulate ARGS` in a subprocess; yield its base URL and the lines printed."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), environment.get("PYTHONPATH", "")) if p
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from segsync.cli import main; main()", "emulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("api key:"):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not found.wait(20):
            process.kill()
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"emulator did not start: {lines} {err}")
        url = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("base_url:"))
        yield url, lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
def test_emulate_serves_on_loopback_and_prints_url_and_key() -> None:
    """The emulator listens on 127.0.0.1, accepts the chosen key only, and says so."""
    with emulate(
        "ping",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--faults",
        "500:0",
        "--seed",
        "3",
        "--emulator",
        "test_emulator_cli:PingEmulator",
    ) as (url, lines):
        good = httpx.get(f"{url}/ping", headers={"Authorization": f"Bearer {KEY}"})
        bad = httpx.get(f"{url}/ping", headers={"Authorization": "Bearer ping-default-key"})

    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v9")
    assert f"api key:  {KEY}" in lines
    assert "faults:   500:0 (seed 3)" in lines
    assert good.status_code == 200
    assert good.json() == {"pong": True, "faults": {"500": 0.0}}
    assert (bad.status_code, bad.json()["code"]) == (401, "unauthorized")


@pytest.mark.slow
def test_emulate_injects_the_faults_it_was_given() -> None:
    """--faults '503:1' makes every answer the platform's 503."""
    with emulate(
        "ping", "--port", "0", "--faults", "503:1", "--emulator", "test_emulator_cli:PingEmulator"
    ) as (url, lines):
        answer = httpx.get(f"{url}/ping", headers={"Authorization": "Bearer ping-default-key"})

    assert "api key:  ping-default-key" in lines
    assert answer.status_code == 503
    assert answer.json()["oops"] == "Injected server error"


@pytest.mark.skipif(not TEMPLATE_SRC.is_dir(), reason="examples/connector-template is absent")
@pytest.mark.slow
def test_emulate_serves_the_template_connector_emulator() -> None:
    """The template connector's emulator is served through its connector's emulator_path."""
    env = {"PYTHONPATH": str(TEMPLATE_SRC)}
    script = (
        "from segsync.connector import registry; "
        "from segsync_template import TemplateConnector as C; registry.register(C); "
        "from segsync.cli import main; main()"
    )
    with contextlib.ExitStack() as stack:
        environment = {**os.environ, **env}
        process = subprocess.Popen(
            [sys.executable, "-c", script, "emulate", "template", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]

    assert lines[0].startswith("template emulator listening on http://127.0.0.1:"), lines
    assert lines[2].startswith("api key:")


@pytest.mark.slow
def test_unknown_platform_suggests_the_closest_and_exits_2() -> None:
    """A misspelt platform exits 2 with a did-you-mean."""
    result = CliRunner().invoke(app, ["emulate", "mailchimpp", "--port", "0"])

    assert result.exit_code == 2
    assert "did you mean 'mailchimp'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--emulator", "test_emulator_cli:NotAnEmulator"], "not a segsync Emulator subclass"),
        (["--emulator", "no_such_module_xyz:Thing"], "cannot import"),
        (["--emulator", "test_emulator_cli:PingEmulator", "--faults", "boom:1"], "boom"),
    ],
)
@pytest.mark.slow
def test_bad_emulator_or_faults_exit_2(args: list[str], message: str) -> None:
    """A bad --emulator path or --faults spec exits 2 saying what is wrong."""
    sys.path.insert(0, str(HERE))
    try:
        result = CliRunner().invoke(app, ["emulate", "ping", "--port", "0", *args])
    finally:
        sys.path.remove(str(HERE))

    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.slow
def test_port_in_use_exits_2() -> None:
    """A port already taken is reported, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sys.path.insert(0, str(HERE))
        try:
            result = CliRunner().invoke(
                app,
                [
                    "emulate",
                    "ping",
                    "--port",
                    str(port),
                    "--emulator",
                    "test_emulator_cli:PingEmulator",
                ],
            )
        finally:
            sys.path.remove(str(HERE))

    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_load_emulator_uses_the_registry() -> None:
    """load_emulator follows the connector's emulator_path, and explains connectors without one."""
    with pytest.raises(EmulatorNotFound, match="did you mean 'hubspot'"):
        load_emulator("hubspt")
    sys.path.insert(0, str(HERE))
    try:
        assert load_emulator("x", "test_emulator_cli:PingEmulator").__name__ == "PingEmulator"
    finally:
        sys.path.remove(str(HERE))
