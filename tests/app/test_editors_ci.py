"""Definitions in editors and in users' CI: ``lakecircle schema``, Taplo with the README's
directive and mapping, the pre-commit hook, and the README's CI job, each run for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lakecircle.app.cli import cli
from lakecircle.core.definition_schema import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "definitions" / "analytics-lake.toml"
MISTAKE = 'BucketName = "b"\n[[LifecycleConfiguration.Rules]]\nID = "r"\nStatus = "Enabled"\nExpiraton = { Days = 3 }\n'
"""A file with one mistake an editor should mark: a misspelt key."""


def readme_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the README's section "Editors and CI", in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Editors and CI\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def readme_block(language: str, holding: str) -> str:
    return next(block for block in readme_blocks(language) if holding in block)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- tools of this environment, with arguments of the test
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed beside {sys.executable}; install the test extra: pip install -e '.[test]'"
    return found


def test_lakecircle_schema_prints_the_committed_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.output == (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A repository of a user's definitions, with the schema written by ``lakecircle schema``."""
    (tmp_path / "schema").mkdir()
    (tmp_path / SCHEMA_PATH).write_text(CliRunner().invoke(cli, ["schema"]).output, encoding="utf-8")
    (tmp_path / "definitions").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "definitions" / EXAMPLE.name)
    return tmp_path


def taplo_check(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(repo), "NO_COLOR": "1"}
    return run(tool("taplo"), "check", *files, cwd=repo, env=env)


def test_taplo_with_the_readme_mapping_accepts_an_example_and_marks_a_mistake(user_repo: Path) -> None:
    (user_repo / ".taplo.toml").write_text(readme_block("toml", "[[rule]]"), encoding="utf-8")
    accepted = taplo_check(user_repo)
    assert accepted.returncode == 0, accepted.stderr
    (user_repo / "definitions" / "typo.toml").write_text(MISTAKE, encoding="utf-8")
    refused = taplo_check(user_repo)
    assert refused.returncode != 0
    assert "typo.toml" in refused.stderr
    assert "'Expiraton' was unexpected" in refused.stderr


def test_taplo_with_the_readme_directive_accepts_an_example_and_marks_a_mistake(user_repo: Path) -> None:
    directive = readme_block("toml", "#:schema").splitlines()[0]
    assert directive.startswith("#:schema ")
    good, bad = user_repo / "definitions" / EXAMPLE.name, user_repo / "definitions" / "typo.toml"
    good.write_text(f"{directive}\n{EXAMPLE.read_text(encoding='utf-8')}", encoding="utf-8")
    bad.write_text(f"{directive}\n{MISTAKE}", encoding="utf-8")
    accepted = taplo_check(user_repo, f"definitions/{EXAMPLE.name}")
    assert accepted.returncode == 0, accepted.stderr
    refused = taplo_check(user_repo, "definitions/typo.toml")
    assert refused.returncode != 0
    assert "'Expiraton' was unexpected" in refused.stderr


# -- pre-commit --------------------------------------------------------------------------------


def hook() -> dict[str, Any]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    found: dict[str, Any] = next(h for h in hooks if h["id"] == "lakecircle-validate")
    return found


def test_pre_commit_reads_the_hook_manifest_and_the_readme_config(tmp_path: Path) -> None:
    checked = run(sys.executable, "-m", "pre_commit", "validate-manifest", ROOT / ".pre-commit-hooks.yaml", cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(readme_block("yaml", "lakecircle-validate"), encoding="utf-8")
    checked = run(sys.executable, "-m", "pre_commit", "validate-config", config, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_hook_runs_lakecircle_validate_on_the_definitions_folder() -> None:
    offered = hook()
    assert (offered["entry"], offered["language"]) == ("lakecircle validate", "python")
    assert offered["args"] == ["definitions"]
    assert offered["pass_filenames"] is False
    files = re.compile(offered["files"])
    assert all(files.search(p) for p in ("definitions/a.toml", "definitions/team/b.toml"))
    assert not any(files.search(p) for p in ("pyproject.toml", "definitions/notes.md", "other/definitions/a.toml"))


def pre_commit_run(repo: Path, **overrides: Any) -> subprocess.CompletedProcess[str]:
    """``pre-commit run --all-files`` in ``repo`` with the offered hook as a local one.

    ``language: system`` in place of ``python``: pre-commit would otherwise install this
    project from the network into a fresh environment; the hook's command, arguments and
    file pattern are the manifest's own (or ``overrides``, as a user's config gives them).
    """
    local = hook() | {"language": "system"} | overrides
    config = {"repos": [{"repo": "local", "hooks": [local]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(repo),
        "PRE_COMMIT_HOME": str(repo / ".cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    assert run("git", "add", "-A", cwd=repo, env=env).returncode == 0
    return run(sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never", cwd=repo, env=env)


@pytest.fixture
def git_repo(user_repo: Path) -> Path:
    assert run("git", "init", "-q", cwd=user_repo).returncode == 0
    return user_repo


def test_the_hook_passes_valid_definitions_and_fails_naming_a_bad_file(git_repo: Path) -> None:
    passed = pre_commit_run(git_repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"lakecircle validate\.+Passed", passed.stdout)
    (git_repo / "definitions" / "typo.toml").write_text(MISTAKE, encoding="utf-8")
    failed = pre_commit_run(git_repo)
    assert failed.returncode == 1
    assert re.search(r"lakecircle validate\.+Failed", failed.stdout)
    assert "definitions/typo.toml: b: r: Expiraton" in failed.stdout


def test_the_hook_takes_another_folder_as_the_readme_shows(git_repo: Path) -> None:
    user = yaml.safe_load(readme_block("yaml", "lakecircle-validate"))["repos"][0]["hooks"][0]
    folder = git_repo / user["args"][0]
    folder.mkdir(parents=True)
    (git_repo / "definitions" / "typo.toml").write_text(MISTAKE, encoding="utf-8")  # outside the folder
    (folder / "backups.toml").write_text((ROOT / "examples/definitions/backups.toml").read_text(), encoding="utf-8")
    passed = pre_commit_run(git_repo, args=user["args"], files=user["files"])
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (folder / "typo.toml").write_text(MISTAKE, encoding="utf-8")
    failed = pre_commit_run(git_repo, args=user["args"], files=user["files"])
    assert failed.returncode == 1
    assert f"{user['args'][0]}/typo.toml" in failed.stdout


# -- the README's CI job ------------------------------------------------------------------------


def test_the_readme_ci_job_runs_validate_then_plan_with_detailed_exit_codes() -> None:
    steps = yaml.safe_load(readme_block("yaml", "jobs:"))["jobs"]["lifecycle"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert any(c.startswith("lakecircle validate definitions/") for c in commands)
    assert any("lakecircle plan --definitions definitions/ --detailed-exitcode" in c for c in commands)


@pytest.mark.parametrize(("plan_exit", "job_exit"), [(0, 0), (2, 0), (1, 1)])
def test_the_readme_ci_plan_step_passes_on_pending_changes_and_fails_on_errors(
    tmp_path: Path, plan_exit: int, job_exit: int
) -> None:
    """The step's shell, with a ``lakecircle`` that exits as ``plan`` would."""
    steps = yaml.safe_load(readme_block("yaml", "jobs:"))["jobs"]["lifecycle"]["steps"]
    script = next(step["run"] for step in steps if "--detailed-exitcode" in step.get("run", ""))
    stub = tmp_path / "lakecircle"
    stub.write_text(f"#!/bin/sh\nexit {plan_exit}\n", encoding="utf-8")
    stub.chmod(0o755)
    done = run("bash", "-e", "-c", script, cwd=tmp_path, env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"})
    assert done.returncode == job_exit, done.stdout + done.stderr
