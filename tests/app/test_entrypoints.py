"""The process-level entry points: ``python -m lakecircle`` as the original, and the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
from tests.conftest import ServerTap
from tests.helpers import cli_env

DEFINITION = b"""BucketName = "orig-bucket"
[[LifecycleConfiguration.Rules]]
ID = "expire"
Status = "Enabled"
Filter = { Prefix = "logs/" }
Expiration = { Days = 30 }
"""


def run_module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "lakecircle", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def original_env(moto: str, home: Path, **extra: str) -> dict[str, str]:
    """The original's settings (LCC_ACTIONS as ``extra``), for moto's account, one replica."""
    return cli_env(moto, home, LCC_ENDPOINT="s3://orig-endpoint/lifecycle/", **extra)


def arrange(s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="orig-endpoint")
    s3_client.put_object(Bucket="orig-endpoint", Key="lifecycle/definition/orig.toml", Body=DEFINITION)
    s3_client.create_bucket(Bucket="orig-bucket")
    old = LifecycleConfig(
        (Rule.model_validate({"ID": "old", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}),)
    )
    s3_client.put_bucket_lifecycle_configuration(Bucket="orig-bucket", **config_to_request(old))


def test_bare_module_with_sync_runs_one_cycle_and_exits_0(
    moto: str, s3_client: Any, tap: ServerTap, tmp_path: Path
) -> None:
    arrange(s3_client)
    tap.reset()
    done = run_module(original_env(moto, tmp_path, LCC_ACTIONS="SYNC"))
    assert done.returncode == 0, done.stderr
    assert tap.total("PUT") == 1
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket="orig-bucket")["Rules"]
    assert [r["ID"] for r in rules] == ["expire"]


def test_bare_module_with_dryrun_writes_nothing(moto: str, s3_client: Any, tap: ServerTap, tmp_path: Path) -> None:
    arrange(s3_client)
    tap.reset()
    done = run_module(original_env(moto, tmp_path, LCC_ACTIONS="DRYRUN"))
    assert done.returncode == 0, done.stderr
    assert "1 bucket(s) would change" in done.stdout
    assert tap.total("PUT") == 0


def test_bare_module_with_a_bad_setting_exits_1_naming_it(moto: str, tmp_path: Path) -> None:
    done = run_module(original_env(moto, tmp_path, LCC_ACTIONS="APPLY"))
    assert done.returncode == 1
    assert "LCC_ACTIONS" in done.stderr


def test_demo_runs_without_aws_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCC_", "AWS_"))}
    env["HOME"] = str(tmp_path)  # no AWS config of the machine can be read
    before = set(tmp_path.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "lakecircle", "demo", "--cycles", "2", "--metrics-addr", "127.0.0.1:0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    plan, _, daemon = out.partition("LakeCircle daemon running; metrics on http://127.0.0.1:")
    assert "bucket acme-db-backups will be updated" in plan
    assert "- rule tmp-cleanup" in plan
    assert "missing: acme-media-assets" in plan
    # The fleet (examples/definitions/fleet/): where each rule comes from, the override, the tags.
    assert "+ rule logs-expire  (from lifecycle/definition/fleet/acme-audit-logs.toml)" in plan
    assert '# overrides lifecycle/definition/fleet/logs.toml (pattern "*-logs")' in plan
    assert '+ rule retention-1y  (from lifecycle/definition/fleet/retention-1y.toml, pattern "*")' in plan
    assert "unmanaged (no definition selects them; never read, never written): acme-scratch" in plan
    assert "rule logs-expire: overridden by lifecycle/definition/fleet/acme-audit-logs.toml" in plan
    assert 'lifecycle/definition/fleet/retention-1y.toml  (pattern "*", tags "retention" = "1y")' in plan
    first, _, second = daemon.partition("== cycle 2 (signal) ==")
    # Every managed bucket now also gets the baseline's rule (the fleet example, on purpose):
    # 8 buckets written, not 2, and acme-scratch is counted as unmanaged.
    assert (
        "== cycle 1 (startup) ==\n8 bucket(s) written: 22 rule(s) added, 1 changed, 1 removed;"
        " 0 in sync, 1 missing, 0 failed, 1 unmanaged"
    ) in first
    assert "1 bucket(s) written: 0 rule(s) added, 1 changed, 1 removed; 6 in sync" in second
    assert "- rule manual-hotfix" in second
    web_logs = "acme-web-logs: abort-incomplete-uploads, logs-infrequent-access, logs-expire (expires after 90 days)"
    assert f"{web_logs}\n" in out
    assert "acme-audit-logs: logs-expire (expires after 2557 days), audit-noncurrent-expire," in out
    assert "acme-invoices: abort-incomplete-uploads, retention-1y (expires after 365 days)\n" in out
    assert "acme-scratch (unmanaged: no definition selects it) still has its own 1 rule(s)" in out
    assert "Stopped after 2 cycle(s)." in out
    assert set(tmp_path.iterdir()) == before


def test_bare_module_names_every_settings_problem_in_one_run(moto: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LCC_")}
    env.update(LCC_AWS_REGION="Europe (Ireland)", LCC_MAX_REQUESTS_PER_SECOND="1e-300")
    done = run_module(env)
    assert done.returncode == 1
    for problem in (
        "LCC_AWS_REGION: expected an AWS region code such as eu-west-1",
        "LCC_MAX_REQUESTS_PER_SECOND: 1e-300 is out of range; expected 0 (no limit) or 0.1 to 100,000 requests",
        "LCC_AWS_ACCOUNT: required but not set",
        "LCC_ENDPOINT: required but not set",
    ):
        assert problem in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_launcher_catches_the_daemons_signals_before_it_imports_the_command_line() -> None:
    probe = (
        "import signal, sys\n"
        "from lakecircle.app.launch import prepare\n"
        "prepare(['daemon'])\n"
        "assert 'lakecircle.app.cli' not in sys.modules, 'the command line was imported first'\n"
        "caught = [signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)]\n"
        "assert all(callable(h) and h is not signal.default_int_handler for h in caught), caught\n"
        "prepare(['sync'])\n"
    )
    done = subprocess.run(  # noqa: S603 -- our own interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def _catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (15 - 1) & 1)


def test_a_sigterm_caught_while_the_command_line_still_loads_ends_the_daemon_with_0(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", tmp_path, LCC_ENDPOINT="s3://orig-endpoint/lifecycle/")
    launcher = Path(sys.executable).with_name("lakecircle")
    with subprocess.Popen(  # noqa: S603 -- our own executable
        [str(launcher), "daemon", "--metrics-addr", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as daemon:
        deadline = time.monotonic() + 30
        while not _catches_sigterm(daemon.pid):
            assert time.monotonic() < deadline, "the daemon never caught SIGTERM"
            time.sleep(0.001)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err
    assert '"event": "daemon_stopped"' in err


@pytest.mark.parametrize("entry", ["launcher", "module"])
def test_output_that_cannot_be_written_is_one_line_and_exit_1_never_a_traceback(entry: str, tmp_path: Path) -> None:
    launcher = [str(Path(sys.executable).with_name("lakecircle"))]
    command = launcher if entry == "launcher" else [sys.executable, "-m", "lakecircle"]
    with open("/dev/full", "w") as full:  # every write: ENOSPC, as on a full disk
        done = subprocess.run(  # noqa: S603 -- our own executable
            [*command, "schema"],
            env=cli_env("http://127.0.0.1:9", tmp_path),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr == (
        "Error: could not write the output: No space left on device; free some space or write elsewhere\n"
    )
