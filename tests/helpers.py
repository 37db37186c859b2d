"""Builders and a process harness shared by the tests that use LakeCircle as a user does.

A bucket's configuration is pictured compactly as ``{rule ID: expiration days}``, which
is what the campaign's assertions compare: :func:`pictured` turns a picture into rules for
the shared builders of :mod:`tests.builders`, :func:`put_rules` and :func:`rules_of` write
and read it in S3, :func:`put_definitions` uploads definition files under an endpoint.

The harness runs the real command line and daemon as subprocesses (``python -m
lakecircle``) with an environment built from scratch (:func:`cli_env`), so nothing of the
machine running the tests, and nothing of the test process, changes what is tested. The
environment carries recognisable fake secrets (:data:`SECRETS`); :func:`leaks` finds a
Python traceback, a repr of internals or a secret in anything a user would see.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
import pytest
from botocore.config import Config

from lakecircle.core.model import Rule
from tests.builders import rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ONE_REPLICA

Rules = Mapping[str, int]
"""A bucket's lifecycle configuration in brief: rule ID -> expiration days."""

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
"""The access key ID of every run :func:`cli_env` builds (AWS's documented example key)."""

SECRET = "lcc-canary-7Qx2Kp9WmZ4vR8tN3bH6yJ1s"
"""A fake secret: the AWS secret key of every run, and planted in settings by the campaign."""

SECRET_TOKEN = "lcc-canary-session-Fq5Lr0Tc8Ve2Xa4Gd6Hj"

SECRETS = (SECRET, SECRET_TOKEN)


# -- rules, definitions, buckets ----------------------------------------------------------


def pictured(rules: Rules) -> tuple[Rule, ...]:
    """The rules a picture stands for: rule ``<id>`` expires ``<id>/`` after its days."""
    return tuple(rule(rule_id, days, f"{rule_id}/") for rule_id, days in rules.items())


def put_rules(s3: Any, bucket: str, rules: Rules) -> None:
    """Give ``bucket`` exactly ``rules`` (creating the bucket if needed)."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    if not rules:
        s3.delete_bucket_lifecycle(Bucket=bucket)
        return
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [r.to_wire() for r in pictured(rules)]}
    )


def rules_of(s3: Any, bucket: str) -> dict[str, int]:
    """What ``bucket`` holds, read from the server: rule ID -> expiration days."""
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return {}
        raise
    return {r["ID"]: r.get("Expiration", {}).get("Days", 0) for r in rules}


def holdings(s3: Any, buckets: Iterable[str]) -> dict[str, dict[str, int]]:
    return {bucket: rules_of(s3, bucket) for bucket in buckets}


def plain_client(endpoint_url: str) -> Any:
    """A boto3 S3 client that sends no checksum with uploads, as older tools and consoles do."""
    return boto3.client(
        "s3",
        region_name=MOTO_REGION,
        endpoint_url=endpoint_url,
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
    )


def assumed_client(service: str, role_arn: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client with credentials from AssumeRole on ``role_arn``: it acts in the role's account.

    moto's STS answers AssumeRole for any role ARN, whether the role exists or not, and
    the credentials it gives act in the account the ARN names (its S3 keeps each account's
    buckets apart), which is how the tests set up member accounts.
    """
    sts = boto3.client("sts", region_name=MOTO_REGION, endpoint_url=endpoint_url)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="lakecircle-tests")["Credentials"]
    return boto3.client(
        service,
        region_name=MOTO_REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def put_definitions(s3: Any, bucket: str, prefix: str, files: Mapping[str, bytes]) -> None:
    """Upload definition files as ``<prefix>definition/<name>`` (the endpoint bucket is created)."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}definition/{name}", Body=body)


def object_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


# -- the environment of a run ----------------------------------------------------------------


def cli_env(endpoint_url: str, home: Path, **settings: str) -> dict[str, str]:
    """A run's whole environment: the SDK pointed at ``endpoint_url``, fake secrets, ``settings``.

    Nothing is inherited but ``PATH``: no ``LCC_*`` or ``AWS_*`` variable of the test
    process, no AWS configuration file of the machine.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": SECRET_TOKEN,
        "AWS_DEFAULT_REGION": MOTO_REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "LCC_AWS_ACCOUNT": MOTO_ACCOUNT,
        "LCC_AWS_REGION": MOTO_REGION,
        "LCC_LOG_FORMAT": "JSON",
        "LCC_RETRY_MAX_ATTEMPTS": "3",
        "LCC_RETRY_BASE_DELAY": "0.01",
        "LCC_RETRY_MAX_DELAY": "0.05",
        **ONE_REPLICA,  # as most tests are; the replicas' tests turn leases on
    }
    env.update(settings)
    return {k: v for k, v in env.items() if v is not None}


def child_env(**settings: str) -> dict[str, str]:
    """This test process's environment for a child process: its ``LCC_*`` variables dropped but
    one replica's (:data:`~tests.conftest.ONE_REPLICA`), then ``settings``.

    For the tests that point a child at what the ``moto`` fixture set in this process (the
    SDK's variables); :func:`cli_env` builds a whole environment from scratch instead.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LCC_")}
    env.update(ONE_REPLICA)
    env.update(settings)
    return env


def clear_settings(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """This process's ``LCC_*`` variables replaced by one replica's (leases off) and ``settings``,
    for commands run in this process and children that inherit its environment."""
    only_settings(monkeypatch, **ONE_REPLICA, **settings)


def moto_account(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """This process's settings for commands run in it against the ``moto`` fixture's account,
    its endpoint ``s3://lcc-endpoint/lc/`` (the bucket made by the caller), JSON logs of
    errors alone, then ``settings``."""
    clear_settings(
        monkeypatch,
        LCC_ENDPOINT="s3://lcc-endpoint/lc/",
        LCC_AWS_ACCOUNT=MOTO_ACCOUNT,
        LCC_AWS_REGION=MOTO_REGION,
        LCC_LOG_FORMAT="JSON",
        LCC_APP_LEVEL="ERROR",
        **settings,
    )


def only_settings(monkeypatch: pytest.MonkeyPatch, **settings: str) -> pytest.MonkeyPatch:
    """This process's ``LCC_*`` variables replaced by ``settings`` alone (the settings' own tests)."""
    for name in [n for n in os.environ if n.startswith("LCC_")]:
        monkeypatch.delenv(name)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


# -- what a user sees ---------------------------------------------------------------------

_INTERNALS = (
    re.compile(r"Traceback"),
    re.compile(r'File "[^"]+", line \d+'),
    re.compile(r"<[A-Za-z_][\w.]* object at 0x[0-9a-fA-F]+>"),
    re.compile(r"\b(?:datetime|decimal|pathlib)\.[A-Za-z]+\("),
    re.compile(r"\b(?:PosixPath|Decimal|ObjectRef|BucketRef|FileBrief|LifecycleConfig|Settings)\("),
    re.compile(r"\b[A-Z]\w*(?:Error|Exception)\("),
    re.compile(r"set_int_max_str_digits"),
    re.compile(r"\bb'[^']*'"),
    re.compile(r"\{'"),
)


def leaks(text: str, secrets: Iterable[str] = SECRETS) -> list[str]:
    """The lines of ``text`` that show a traceback, a Python repr of internals, or a secret."""
    tails = [s[-12:] for s in secrets]
    return [
        line[:300]
        for line in text.splitlines()
        if any(p.search(line) for p in _INTERNALS) or any(t in line for t in tails)
    ]


@dataclass(frozen=True, repr=False)
class Run:
    """A finished command: what a user saw, and how long it took."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def lines_naming(self, text: str) -> list[str]:
        return [line for line in self.output.splitlines() if text in line]

    def __repr__(self) -> str:  # pytest shows an assertion's message object by its repr
        return (
            f"lakecircle {' '.join(self.args)} -> exit {self.code} in {self.elapsed:.1f} s\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 60) -> Run:
    """Run ``python -m lakecircle ARGS`` to its end; a run past ``timeout`` fails the test."""
    began = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "lakecircle", *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(
            f"lakecircle {' '.join(args)} did not end within {timeout} s (killed)\n"
            f"--- stdout\n{out[-2000:]}\n--- stderr\n{err[-2000:]}"
        ) from None
    return Run(tuple(args), done.returncode, done.stdout, done.stderr, time.monotonic() - began)


class Promises:
    """What one case promises, every broken promise reported at once.

    A campaign case checks S3's state, the exit code, what is named and what leaks; a
    failure that lists every broken promise (not only the first) tells the one fixing
    the product what is left. ``with Promises(run) as p:`` asserts on the way out.
    """

    def __init__(self, run: Run | str) -> None:
        self.run = run
        self.broken: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            assert not self.broken, "broken: " + "\n        ".join(self.broken) + f"\n{self.run}"

    def check(self, kept: bool, promise: str) -> None:
        if not kept:
            self.broken.append(promise)

    def equal(self, actual: object, expected: object, what: str) -> None:
        if actual != expected:
            self.broken.append(f"{what}: {actual!r}, expected {expected!r}")

    def exit_code(self, expected: int) -> None:
        assert isinstance(self.run, Run)
        self.equal(self.run.code, expected, "exit code")

    def names(self, text: str, what: str | None = None) -> None:
        output = self.run.output if isinstance(self.run, Run) else self.run
        self.check(text in output, f"{what or text} is not named")

    def clean(self) -> None:
        output = self.run.output if isinstance(self.run, Run) else self.run
        bad = leaks(output)
        self.check(not bad, "a traceback, a repr or a secret shows:\n          " + "\n          ".join(bad[:8]))


def assert_clean(run: Run | str) -> None:
    """No traceback, no repr of internals and no secret in anything the user saw."""
    text = run.output if isinstance(run, Run) else run
    bad = leaks(text)
    assert not bad, "what a user sees shows internals or a secret:\n" + "\n".join(bad) + f"\n\n{run}"


# -- the daemon as a process -----------------------------------------------------------------


class DaemonProcess:
    """``python -m lakecircle daemon`` in the background, its JSON log lines read as they come.

    Standard output and error go to files (a pipe nobody reads could fill up and block the
    daemon). ``with DaemonProcess(env, log) as daemon:`` kills it on the way out if it
    still runs.
    """

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.log = log
        self.args = ("daemon", *args)
        self._out = log.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "lakecircle", *self.args],
            env=dict(env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.signalled_at: float | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (other lines, if any, are left out)."""
        out = []
        for line in self.text.splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                out.append(document)
        return out

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        """Wait for ``check()``; fail the test if the daemon exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.proc.returncode}) waiting for {what}\n{self}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s\n{self}")
            time.sleep(0.05)

    def wait_for_event(self, event: str, *, count: int = 1, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [e for e in self.named(event) if all(e.get(k) == v for k, v in fields.items())]

        self.wait_until(f"{count} {event} {fields or ''}", lambda: len(found()) >= count, timeout)
        return found()[count - 1]

    def metrics_url(self, timeout: float = 30) -> str:
        """Where the daemon serves its metrics (it logs the address it bound)."""
        listening = self.wait_for_event("metrics_listening", timeout=timeout)
        return str(listening["address"]).removesuffix("/metrics")

    def send(self, sig: signal.Signals) -> None:
        self.signalled_at = time.monotonic()
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> tuple[int, float]:
        """The exit code and the seconds since the last signal (or since now)."""
        began = self.signalled_at or time.monotonic()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout} s\n{self}") from None
        return code, time.monotonic() - began

    def __repr__(self) -> str:  # pytest shows an assertion's message object by its repr
        return f"lakecircle {' '.join(self.args)} (pid {self.proc.pid}), its log:\n{self.text[-4000:]}"


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 -- loopback URL of the test
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def offline_sdk(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The AWS SDK's own variables for a test endpoint: test credentials, no configuration
    file of the machine (``home`` holds none), no profile, no endpoint of moto's."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
