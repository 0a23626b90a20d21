"""The container image (Dockerfile, .dockerignore) and the Kubernetes CronJob of
docs/scheduling.md.

The image is built and smoke-run when a working container engine (docker or podman, with its
daemon or service reachable) is present; otherwise that test skips and says why. The
properties of the Dockerfile, of the build context the .dockerignore lets through, and of
the CronJob are checked everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import segsync

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE = "segsync-test:smoke"


def _engine() -> tuple[str | None, str]:
    """A container engine that can build here, or None and the reason."""
    reasons = []
    for name in ("docker", "podman"):
        path = shutil.which(name)
        if path is None:
            reasons.append(f"no {name} on PATH")
            continue
        try:
            probe = subprocess.run([path, "info"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{name} info failed: {exc}")
            continue
        if probe.returncode == 0:
            return path, ""
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        reasons.append(f"{name} is installed but cannot build ({last})")
    return None, "; ".join(reasons)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_image_builds_and_runs_segsync_as_a_non_root_user() -> None:
    engine, why = _engine()
    if engine is None:
        pytest.skip(f"no container engine to build the image with: {why}")
    built = subprocess.run([engine, "build", "-t", IMAGE, str(ROOT)], capture_output=True,
                           text=True, timeout=1500)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    def run(*args: str, entrypoint: str | None = None) -> str:
        command = [engine, "run", "--rm"]
        if entrypoint:
            command += ["--entrypoint", entrypoint]
        done = subprocess.run([*command, IMAGE, *args], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert run("--version").strip() == f"segsync {segsync.__version__}"
    assert run("-u", entrypoint="id").strip() != "0"
    listed = run("connectors")
    for name in ("mailchimp", "hubspot", "brevo"):
        assert name in listed
    # the state directory (the volume) is the unprivileged user's to write
    assert "Wrote /var/lib/segsync/segsync.yaml" in run("init", "/var/lib/segsync/segsync.yaml")


# -- the Dockerfile, read ---------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments out."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_runs_segsync_from_a_slim_base_as_a_user_with_state_on_a_volume() -> None:
    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    bases = [args for op, args in steps if op == "FROM"]
    assert bases
    assert all(b.split()[0] == "python:3.12-slim" for b in bases), bases
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [args for op, args in final if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit()  # numeric: Kubernetes' runAsNonRoot can check it
    assert ("ENTRYPOINT", '["segsync"]') in final
    assert any(op == "VOLUME" and "/var/lib/segsync" in args for op, args in final)
    env = " ".join(args for op, args in final if op == "ENV")
    assert "SEGSYNC_STATE=sqlite:////var/lib/segsync/state.db" in env
    assert "SEGSYNC_CONFIG=/etc/segsync/segsync.yaml" in env
    # the build copies what pyproject.toml's wheel is made of
    copied = " ".join(args for op, args in steps if op == "COPY")
    for needed in ("pyproject.toml", "README.md", "src", "connectors"):
        assert needed in copied
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for package in re.findall(r'"((?:src|connectors)/[^"]+)"', project):
        assert package.split("/")[0] in copied, package


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether a context path is left out by .dockerignore patterns (Docker's rules: the last
    matching pattern wins, `!` re-includes, a matched directory takes its contents)."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_the_build_context_holds_the_package_and_never_keys_or_state() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    needed = ["pyproject.toml", "README.md"]
    needed += [p.relative_to(ROOT).as_posix()
               for top in ("src", "connectors") for p in (ROOT / top).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and "tests" not in p.parts]
    assert len(needed) > 50
    kept_out = [p for p in needed if _ignored(p, patterns)]
    assert kept_out == [], kept_out
    for secret_or_state in (".env", "deploy/.env", ".env.production", ".venv/bin/python",
                            ".segsync/state.db", "state.db", ".git/config",
                            "src/segsync/__pycache__/x.pyc", "tests/test_x.py"):
        assert _ignored(secret_or_state, patterns), secret_or_state


# -- the Kubernetes CronJob of docs/scheduling.md -----------------------------------------------


def _cronjob() -> dict[str, Any]:
    text = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and doc.get("kind") == "CronJob":
                return doc
    raise AssertionError("docs/scheduling.md has no CronJob")


def test_the_cronjob_runs_the_image_alone_with_secrets_and_postgresql_state() -> None:
    job = _cronjob()
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    text = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    built = re.findall(r"docker build -t (\S+) \.", text)
    assert built == [container["image"]]  # the image the doc builds from the Dockerfile
    assert "sync" in container["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    secret_refs = [s["secretRef"]["name"] for s in container.get("envFrom", [])
                   if "secretRef" in s]
    assert secret_refs  # the platforms' keys
    state = next(e for e in container["env"] if e["name"] == "SEGSYNC_STATE")
    assert state["valueFrom"]["secretKeyRef"]["name"] in secret_refs  # with a password
    for e in container.get("env", []):  # no key or URL written in clear
        assert "value" not in e or not re.search(r"(key|token|postgres)", str(e["value"]), re.I)
    assert "state: ${SEGSYNC_STATE}" in text
    assert "SEGSYNC_STATE=postgresql://" in text
