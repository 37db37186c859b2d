"""The definition input under hostile conditions: nothing removed from a picture that is not whole.

Against the real CLI and moto's server over HTTP (through the fault proxy where an answer
must be spoiled), and the daemon's poll against the in-memory account with a fake clock.
Every case checks what S3 holds afterwards and that each unreadable file is named with
its reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest
import structlog
from botocore.config import Config
from click.testing import CliRunner, Result

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.stores import S3EndpointStore
from lakecircle.app.cli import cli
from lakecircle.app.output import summary
from lakecircle.core.definitions import Definitions
from lakecircle.core.problems import Problem
from lakecircle.core.report import BucketResult, BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import AccessDenied
from lakecircle.ports import ObjectRef
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.testing import MemoryS3
from tests.adapters.test_local import UNREADABLE_KINDS, make_entry
from tests.adapters.test_s3 import serve
from tests.builders import definition
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import pictured
from tests.service.test_daemon import FakeClock, run_until

ENDPOINT = "lcc-endpoint"
PREFIX = "lc/"
DEFINITIONS = f"{PREFIX}definition/"
BUCKET = "shared-data"
"""Defined by two files: a.toml (r1 changed, r3 new) and b.toml (r2, the file that breaks)."""

LIVE = {"r1": 30, "r2": 60}
A_FILE = "a.toml"
B_FILE = "b.toml"
AFTER = {"r1": 45, "r2": 60, "r3": 90}
"""What the bucket holds after a sync with b.toml unreadable: r1 changed, r3 added, r2 kept."""


A_BODY = definition(BUCKET, *pictured({"r1": 45, "r3": 90}))
B_BODY = definition(BUCKET, *pictured({"r2": 60}))


def live(s3_client: Any, bucket: str = BUCKET) -> dict[str, int]:
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return {r["ID"]: r["Expiration"]["Days"] for r in rules}


def lifecycle_writes(tap: ServerTap) -> int:
    return tap.total("PUT") + tap.total("DELETE")


@pytest.fixture
def lcc_env(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint bucket, the shared bucket holding r1 and r2, and LakeCircle's settings."""
    s3_client.create_bucket(Bucket=ENDPOINT)
    s3_client.create_bucket(Bucket=BUCKET)
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": [r.to_wire() for r in pictured(LIVE)]}
    )
    monkeypatch.setenv("LCC_ENDPOINT", f"s3://{ENDPOINT}/{PREFIX}")
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_LOG_FORMAT", "JSON")
    monkeypatch.setenv("LCC_APP_LEVEL", "WARNING")
    monkeypatch.setenv("LCC_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("LCC_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("LCC_RETRY_MAX_DELAY", "0.02")


def plain_client() -> Any:
    """A boto3 client that uploads without a flexible checksum, as older tools do: the
    object's only integrity check is its ETag."""
    return boto3.client("s3", region_name=MOTO_REGION, config=Config(request_checksum_calculation="when_required"))


def upload(files: dict[str, bytes]) -> None:
    client = plain_client()
    for name, body in files.items():
        client.put_object(Bucket=ENDPOINT, Key=DEFINITIONS + name, Body=body)


def unreadable_lines(result: Result) -> list[str]:
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("unreadable: ")]


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


# -- 1. unreadable local entries ---------------------------------------------------------------


@pytest.mark.timeout(60)  # a named pipe must not hang the command
@pytest.mark.parametrize("kind", sorted(UNREADABLE_KINDS))
def test_sync_with_an_unreadable_local_entry_adds_and_changes_but_removes_nothing_and_exits_1(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None, kind: str
) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / A_FILE).write_bytes(A_BODY)
    entry = make_entry(defs, B_FILE, kind)  # b.toml defined r2: it is no readable file now
    tap.reset()

    result = CliRunner().invoke(cli, ["sync", "--definitions", str(defs)])

    assert result.exit_code == 1, result.output
    no_traceback(result)
    assert live(s3_client) == AFTER
    assert lifecycle_writes(tap) == 1
    [line] = unreadable_lines(result)
    assert line.startswith(f"unreadable: {entry}: could not be read: ")
    assert UNREADABLE_KINDS[kind] in line


@pytest.mark.parametrize("kind", sorted(UNREADABLE_KINDS))
def test_validate_names_an_unreadable_local_entry_and_exits_1(tmp_path: Path, kind: str) -> None:
    (tmp_path / A_FILE).write_bytes(A_BODY)
    entry = make_entry(tmp_path, B_FILE, kind)

    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])

    assert result.exit_code == 1, result.output
    first, count = result.stdout.splitlines()
    assert first.startswith(f"{entry}: -: -: -: could not be read: ")
    assert UNREADABLE_KINDS[kind] in first
    assert count == "2 file(s), 1 valid bucket(s), 0 invalid; 1 error(s), 0 warning(s)"


# -- 2. a definition listing that ends early ------------------------------------------------------


def listing_page(bucket: str, prefix: str, keys: dict[str, bytes], *, token: str | None) -> bytes:
    """A ListObjectsV2 answer holding ``keys`` that says more follows, with ``token`` or none."""
    contents = "".join(
        f"<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        f'<ETag>"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"</ETag><Size>{len(body)}</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for key, body in keys.items()
    )
    next_token = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(keys)}</KeyCount><MaxKeys>1000</MaxKeys>"
        f"<IsTruncated>true</IsTruncated>{next_token}{contents}</ListBucketResult>"
    ).encode()


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto) as started:
        yield started
    assert not started.errors, started.errors


@pytest.mark.parametrize(
    ("repeat", "words"),
    [
        (False, "says more objects follow (IsTruncated) but gives no NextContinuationToken"),
        (True, "a NextContinuationToken already used came back"),
    ],
    ids=["no-token", "repeated-token"],
)
def test_a_definition_listing_that_cannot_be_followed_to_its_end_writes_nothing_and_exits_1(
    s3_client: Any,
    tap: ServerTap,
    proxy: FaultProxy,
    lcc_env: None,
    *,
    monkeypatch: pytest.MonkeyPatch,
    repeat: bool,
    words: str,
) -> None:
    upload({A_FILE: A_BODY, B_FILE: B_BODY})
    # moto answers only its own tokens: one it gave, which the forced page then gives again and again.
    token = s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix=DEFINITIONS, MaxKeys=1)["NextContinuationToken"]
    # Every page shows a.toml only and says more follows: b.toml (r2) is never seen.
    page = listing_page(ENDPOINT, DEFINITIONS, {DEFINITIONS + A_FILE: A_BODY}, token=token if repeat else None)
    proxy.force("ListObjectsV2", ENDPOINT, page)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    tap.reset()

    result = CliRunner().invoke(cli, ["sync"])

    assert result.exit_code == 1, result.output
    no_traceback(result)
    assert "Cycle failed: cannot list the definitions at s3://lcc-endpoint/lc/definition/" in result.stdout
    assert words in result.stdout, result.stdout
    assert lifecycle_writes(tap) == 0
    assert live(s3_client) == LIVE


@pytest.mark.anyio
async def test_a_record_listing_that_cannot_be_followed_to_its_end_raises_instead_of_a_shorter_list(
    s3_client: Any, proxy: FaultProxy
) -> None:
    s3_client.create_bucket(Bucket=ENDPOINT)
    for name in ("a", "b"):
        s3_client.put_object(Bucket=ENDPOINT, Key=f"{PREFIX}current/{name}.json", Body=b"{}")
    proxy.force("ListObjectsV2", ENDPOINT, listing_page(ENDPOINT, f"{PREFIX}current/", {}, token=None))

    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url) as adapter:
        store = S3EndpointStore(adapter, f"s3://{ENDPOINT}/{PREFIX}")
        with pytest.raises(errors.MalformedResponse, match="cannot be followed to its end"):
            await store.list_keys("current/")


# -- 3. a file whose download failed is fetched again at the next poll ---------------------------


class Sink:
    """The daemon's cycle observer: keeps the reports, feeds them to ``metrics`` if given."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.reports: list[CycleReport] = []

    def cycle_finished(self, report: CycleReport) -> None:
        self.reports.append(report)
        if self.metrics is not None:
            self.metrics.observe_cycle(report, now=0.0)

    def cycle_crashed(self, trigger: str) -> None:
        raise AssertionError(f"a {trigger} cycle crashed")


class RefusingS3(MemoryS3):
    """The in-memory account, refusing the first ``refusals[key]`` downloads of a key."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: Counter[str] = Counter()
        self.fetches: Counter[str] = Counter()

    async def fetch(self, ref: ObjectRef) -> bytes:
        self.fetches[ref.key] += 1
        if self.refusals[ref.key] > 0:
            self.refusals[ref.key] -= 1
            raise AccessDenied("Access Denied", operation="GetObject", bucket="endpoint", code="AccessDenied")
        return await super().fetch(ref)


def refusing_world() -> RefusingS3:
    s3 = RefusingS3()
    s3.objects["definition/a.toml"] = A_BODY
    s3.objects["definition/b.toml"] = B_BODY
    s3.objects["definition/c.toml"] = b'BucketName = "c"\n[[LifecycleConfiguration.Rules]\n'  # a syntax error
    s3.add_bucket(BUCKET)
    return s3


def polling_daemon(s3: RefusingS3, clock: FakeClock, observer: Sink | None = None) -> Daemon:
    """A daemon that polls every 30 s of ``clock`` and does not resync in the test's time."""
    return Daemon(
        Reconciler(s3, DefinitionLoader(s3), concurrency=2),
        poll_interval=30,
        resync_interval=10_000,
        clock=clock,
        jitter=lambda: 1.0,
        observer=observer,
    )


@pytest.mark.anyio
async def test_a_file_whose_download_failed_is_fetched_at_the_next_poll_and_a_cycle_runs_when_it_reads() -> None:
    s3, clock = refusing_world(), FakeClock()
    s3.refusals["definition/b.toml"] = 1  # the startup cycle's download is refused, the next one is not
    sink = Sink()
    daemon = polling_daemon(s3, clock, observer=sink)

    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 30 * 5 + 1)

    assert [r.trigger for r in sink.reports] == ["startup", "poll"]  # at the first poll, not the resync
    first, second = (r.definitions for r in sink.reports)
    assert first is not None
    assert second is not None
    assert first.unreadable == ("definition/b.toml", "definition/c.toml")
    assert second.unreadable == ("definition/c.toml",)  # a syntax error stays unreadable
    assert daemon.stats.refetched == 1
    assert s3.fetches == {"definition/a.toml": 1, "definition/b.toml": 2, "definition/c.toml": 1}


@pytest.mark.anyio
async def test_a_download_still_refused_is_tried_at_each_poll_without_a_cycle() -> None:
    s3, clock = refusing_world(), FakeClock()
    s3.refusals["definition/b.toml"] = 1_000
    daemon = polling_daemon(s3, clock)

    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 30 * 4 + 1)

    assert daemon.stats.cycles == 1
    assert daemon.stats.polls == daemon.stats.idle_polls == 4
    assert s3.fetches["definition/b.toml"] == 1 + 4
    assert s3.fetches["definition/c.toml"] == 1  # unreadable by its content: never fetched again


# -- 4. bodies cut short or replaced ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (B_BODY.replace(b"r2", b"r9"), "does not match its ETag"),  # replaced, Content-Length and all
        (Fault.TRUNCATE, "GetObject failed"),  # shorter than its Content-Length, then the connection drops
    ],
    ids=["replaced", "cut-short"],
)
def test_a_definition_body_spoiled_on_the_way_is_never_parsed_and_removes_nothing(
    s3_client: Any,
    tap: ServerTap,
    proxy: FaultProxy,
    lcc_env: None,
    *,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault | bytes,
    reason: str,
) -> None:
    upload({A_FILE: A_BODY, B_FILE: B_BODY})
    proxy.body_operations = frozenset({"GetObject"})
    proxy.force("GetObject", ENDPOINT, fault)  # every download, every attempt
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    tap.reset()

    result = CliRunner().invoke(cli, ["sync"])

    no_traceback(result)
    assert result.exit_code == 1, result.output
    lines = unreadable_lines(result)
    assert [line.split(": ", 2)[1] for line in lines] == [DEFINITIONS + A_FILE, DEFINITIONS + B_FILE], lines
    assert all(reason in line for line in lines), lines
    assert proxy.seen["GetObject"] == 2 * 2  # each file, each of LCC_RETRY_MAX_ATTEMPTS
    assert lifecycle_writes(tap) == 0
    assert live(s3_client) == LIVE  # nothing parsed from a spoiled body: nothing added, nothing removed


def test_a_definition_replaced_on_the_way_once_is_read_at_the_retry(
    s3_client: Any, tap: ServerTap, proxy: FaultProxy, lcc_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload({A_FILE: A_BODY, B_FILE: B_BODY})
    proxy.force(
        "GetObject", ENDPOINT, definition(BUCKET, LifecycleConfiguration=None), times=1
    )  # one download says "no rules"
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)

    result = CliRunner().invoke(cli, ["sync"])

    assert result.exit_code == 0, result.output
    assert live(s3_client) == {"r1": 45, "r2": 60, "r3": 90}
    assert proxy.by_operation(Fault.GARBAGE) == {"GetObject": 1}
    assert proxy.seen["GetObject"] == 3  # a.toml, b.toml, and the one refused again


# -- 5. sync and plan exit 1 and name every unreadable file everywhere ---------------------------


class RefuseGet:
    """moto behind the tap, answering 403 AccessDenied to GETs of one object."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "GET" and environ.get("PATH_INFO") == self.path:
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R1</RequestId></Error>"
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


BROKEN = {
    "syntax.toml": (b'BucketName = "x"\n\n[[LifecycleConfiguration.Rules]\n', "TOML syntax error", 3),
    "empty.toml": (b"", "the file is empty, so it defines no bucket", None),
    "latin1.toml": (b'BucketName = "ok"\n# caf\xe9\n', "file is not UTF-8", 2),
    "huge.toml": (b"#" * (1024 * 1024 + 1), "over the 1 MiB limit", None),
    "refused.toml": (B_BODY, "GetObject failed [AccessDenied]", None),
}


@pytest.fixture
def broken_prefix(s3_client: Any, tap: ServerTap, lcc_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    upload({A_FILE: A_BODY} | {name: body for name, (body, _, _) in BROKEN.items()})
    with serve(RefuseGet(tap, f"/{ENDPOINT}/{DEFINITIONS}refused.toml")) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        tap.reset()
        yield


def check_named(entries: list[dict[str, Any]]) -> None:
    by_file = {e["file"]: e for e in entries}
    assert sorted(by_file) == sorted(DEFINITIONS + name for name in BROKEN)
    for name, (_, reason, line) in BROKEN.items():
        entry = by_file[DEFINITIONS + name]
        assert reason in entry["reason"], entry
        assert entry["line"] == line, entry


def test_plan_exits_1_and_its_json_report_names_each_unreadable_file_with_reason_and_line(
    s3_client: Any, tap: ServerTap, broken_prefix: None
) -> None:
    result = CliRunner().invoke(cli, ["plan", "--output", "json"])

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)["report"]
    assert report["partial_definitions"] is True
    check_named(report["unreadable_files"])


def test_sync_exits_1_names_each_unreadable_file_in_its_summary_and_log_record_and_removes_nothing(
    s3_client: Any, tap: ServerTap, broken_prefix: None
) -> None:
    result = CliRunner().invoke(cli, ["sync"])

    assert result.exit_code == 1, result.output
    no_traceback(result)
    assert f"{len(BROKEN)} definition file(s) could not be read; a partial picture removes no rule:" in result.stdout
    lines = unreadable_lines(result)
    assert len(lines) == len(BROKEN)
    for name, (_, reason, line) in BROKEN.items():
        where = f" (line {line})" if line else ""
        assert any(x.startswith(f"unreadable: {DEFINITIONS}{name}{where}: ") and reason in x for x in lines), lines
    assert live(s3_client) == {"r1": 45, "r2": 60, "r3": 90}  # r2 is in no file that reads: kept
    [log_key] = [
        o["Key"] for o in s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix=f"{PREFIX}log/").get("Contents", [])
    ]
    record = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=log_key)["Body"].read())
    check_named(record["unreadable_files"])


@pytest.mark.anyio
async def test_the_daemon_logs_one_line_per_cycle_naming_the_unreadable_files_and_counts_them() -> None:
    s3, clock = refusing_world(), FakeClock()
    s3.refusals["definition/b.toml"] = 1
    metrics = Metrics()
    daemon = Daemon(
        Reconciler(s3, DefinitionLoader(s3)), clock=clock, jitter=lambda: 1.0, max_cycles=1, observer=Sink(metrics)
    )

    with structlog.testing.capture_logs() as logs, anyio.fail_after(5):
        await daemon.run()

    [line] = [e for e in logs if e["event"] == "definitions_partial"]
    assert line["log_level"] == "warning"
    assert line["count"] == 2
    refused, syntax = line["files"]
    assert refused["file"] == "definition/b.toml"
    assert refused["reason"].startswith("could not be read: bucket endpoint: GetObject failed [AccessDenied]")
    assert (syntax["file"], syntax["line"]) == ("definition/c.toml", 2)
    assert syntax["reason"].startswith("TOML syntax error")
    rendered = metrics.render().decode()
    assert re.search(r"^lakecircle_definition_files_unreadable 2\.0$", rendered, re.M), rendered


# -- 6. validate reads an S3 prefix ------------------------------------------------------------------


def test_validate_reads_an_s3_prefix_beside_local_paths_without_lakecircles_account_settings(
    s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_client.create_bucket(Bucket="defs-bucket")
    client = plain_client()
    client.put_object(Bucket="defs-bucket", Key="team/a.toml", Body=A_BODY)
    client.put_object(Bucket="defs-bucket", Key="team/sub/broken.toml", Body=b'BucketName = "x"\n[[nope]\n')
    client.put_object(Bucket="defs-bucket", Key="team/empty.toml", Body=b"")
    client.put_object(Bucket="defs-bucket", Key="other/c.toml", Body=b"outside the prefix")
    (tmp_path / "local.toml").write_bytes(definition("local-bucket", *pictured({"r1": 10})))

    result = CliRunner().invoke(cli, ["validate", "s3://defs-bucket/team", str(tmp_path)])

    assert result.exit_code == 1, result.output
    no_traceback(result)
    *problems, count = result.stdout.splitlines()
    assert count == "4 file(s), 2 valid bucket(s), 0 invalid; 2 error(s), 0 warning(s)"
    assert problems[0].startswith("s3://defs-bucket/team/empty.toml: -: -: -: the file is empty")
    assert problems[1].startswith("s3://defs-bucket/team/sub/broken.toml: -: -: -: TOML syntax error")


@pytest.mark.parametrize("account", [MOTO_ACCOUNT, None])
def test_validate_of_an_s3_prefix_checks_the_owner_only_when_an_account_is_set(
    s3_client: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, account: str | None
) -> None:
    s3_client.create_bucket(Bucket="defs-bucket")
    plain_client().put_object(Bucket="defs-bucket", Key="team/a.toml", Body=A_BODY)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.delenv("LCC_AWS_ACCOUNT", raising=False)
    if account is not None:
        monkeypatch.setenv("LCC_AWS_ACCOUNT", account)

    result = CliRunner().invoke(cli, ["validate", "s3://defs-bucket/team/"])

    assert result.exit_code == 0, result.output
    events = [e for e in proxy.events if e.bucket == "defs-bucket"]
    assert [e.operation for e in events] == ["ListObjectsV2", "GetObject"]  # no STS, nothing else
    assert {e.owner for e in events} == {account}
    assert proxy.seen["GetCallerIdentity"] == 0


def test_validate_of_a_prefix_that_cannot_be_listed_is_one_error_line(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli, ["validate", "s3://no-such-bucket/team/"])

    assert result.exit_code == 1, result.output
    no_traceback(result)
    [error] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "cannot list the definitions at s3://no-such-bucket/team/" in error
    assert "NoSuchBucket" in error


# -- 7. control characters in names are printed escaped ----------------------------------------------


def test_the_summary_escapes_control_characters_in_bucket_and_file_names() -> None:
    hostile = "evil\nbucket\x1b[2J"
    definitions = Definitions(
        buckets={},
        invalid={},
        problems=(Problem("defs/bad\r\n.toml", "TOML syntax error (at line 4, column 1)"),),
        files=("defs/bad\r\n.toml",),
        unreadable=("defs/bad\r\n.toml",),
    )
    report = CycleReport(
        cycle_id="c",
        trigger="sync",
        dry_run=False,
        started_at=0.0,
        duration=0.1,
        results=(BucketResult(hostile, BucketState.MISSING, error="defined but not in the account"),),
        definitions=definitions,
        counts=Counter({BucketState.MISSING: 1}),
    )

    text = summary(report)

    assert "\x1b" not in text
    assert "\r" not in text
    assert "  missing: evil\\nbucket\\x1b[2J: defined but not in the account" in text.splitlines()
    assert "  unreadable: defs/bad\\r\\n.toml (line 4): TOML syntax error (at line 4, column 1)" in text.splitlines()
