"""The bad-input catalogue: every kind of malformed definition, setting and S3 answer.

Each entry must end in a clear error that names what is wrong and where (the file,
bucket, rule and field, the ``LCC_*`` variable, or the bucket and S3 operation), must
leave the affected bucket untouched, and must let every other bucket proceed.

Definitions run through a whole cycle against the in-memory store (no HTTP needed) and
through ``lakecircle validate``; settings through ``load_settings`` and the command
line; S3 answers through the fault proxy in front of moto, which replaces one bucket's
GetBucketLifecycleConfiguration answer (or the account's listings) with the bad one.
(:mod:`tests.core.test_fuzz` throws random input at the parser; this file is the named list.)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.app.cli import cli
from lakecircle.app.wiring import Account, build_reconciler
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import ConfigError
from lakecircle.ports import BucketRef
from lakecircle.settings import Settings, load_settings
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import LIFECYCLE_OPERATIONS, Fault, FaultProxy

BAD, GOOD = "bad-bucket", "good-bucket"

STALE = Rule.model_validate({"ID": "live-rule", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 7}})

HEAD = (
    f'BucketName = "{BAD}"\n[[LifecycleConfiguration.Rules]]\nID = "r1"\nStatus = "Enabled"\n'
    'Filter = { Prefix = "logs/" }\n'
)
"""A rule of the affected bucket, up to its actions: each case adds (or breaks) the rest."""

GOOD_FILE = (
    f'BucketName = "{GOOD}"\n[[LifecycleConfiguration.Rules]]\nID = "g1"\nStatus = "Enabled"\n'
    'Filter = { Prefix = "tmp/" }\nExpiration = { Days = 3 }\n'
).encode()


# -- definitions --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DefinitionCase:
    files: dict[str, bytes]
    """The affected bucket's files (the good bucket's file is added to every case)."""
    file: str
    """The file the problem must name."""
    bucket: str | None
    """The bucket it must name; None when the file is unreadable as a whole."""
    rule: str | None
    field: str | None
    message: str
    """A fragment of the message: what is wrong, in words a user can act on. ``{dir}``
    stands for the directory of the files."""

    def expected(self, directory: str) -> str:
        return self.message.replace("{dir}", directory)


def case(
    text: str | bytes,
    message: str,
    *,
    rule: str | None = "r1",
    field: str | None = None,
    bucket: str | None = BAD,
    extra: dict[str, bytes] | None = None,
    file: str = "bad.toml",
) -> DefinitionCase:
    data = text.encode() if isinstance(text, str) else text
    return DefinitionCase({"bad.toml": data, **(extra or {})}, file, bucket, rule, field, message)


DAYS = "Expiration = { Days = 30 }\n"

DEFINITION_CASES: dict[str, DefinitionCase] = {
    # syntax and encoding: the file cannot be read at all, so its bucket is unknown
    "toml syntax": case(
        HEAD.replace('Status = "Enabled"', "Status = Enabled") + DAYS,
        "TOML syntax error: Invalid value (at line 4",
        bucket=None,
        rule=None,
    ),
    "not utf-8": case(
        (HEAD + DAYS + "# caf\xe9\n").encode("latin-1"), "file is not UTF-8 (bad byte at line 7", bucket=None, rule=None
    ),
    "oversize": case(
        HEAD + DAYS + "#" * MAX_FILE_BYTES, "over the 1 MiB limit for a definition file", bucket=None, rule=None
    ),
    "deep nesting (arrays)": case(
        HEAD + DAYS + "x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply", bucket=None, rule=None
    ),
    "deep nesting (tables)": case(
        HEAD + DAYS + "x = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n", "nested too deeply", bucket=None, rule=None
    ),
    "integer past the digit limit": case(
        HEAD + "Expiration = { Days = " + "9" * 5000 + " }\n", "an integer with 5,000 digits", bucket=None, rule=None
    ),
    "no bucket name": case(
        HEAD.replace(f'BucketName = "{BAD}"\n', "") + DAYS,
        "missing required key 'BucketName'",
        bucket=None,
        rule=None,
        field="BucketName",
    ),
    # shapes and types
    "wrong type": case(
        HEAD + 'Expiration = { Days = "thirty" }\n', "must be an integer, got string 'thirty'", field="Expiration.Days"
    ),
    "unknown key": case(
        HEAD + "Expiraton = { Days = 30 }\n", "unknown key 'Expiraton' (did you mean 'Expiration'?)", field="Expiraton"
    ),
    "unknown top-level key": case(
        'Bucketname = "x"\n' + HEAD + DAYS,
        "unknown key 'Bucketname' (did you mean 'BucketName'?)",
        rule=None,
        field="Bucketname",
    ),
    "rule is not a table": case(
        f'BucketName = "{BAD}"\n[LifecycleConfiguration]\nRules = ["r1"]\n',
        "a rule must be a table, not str",
        rule="rule #1",
        field="LifecycleConfiguration.Rules[0]",
    ),
    "no Rules key": case(
        f'BucketName = "{BAD}"\n[LifecycleConfiguration]\n',
        "missing required key 'Rules' (write Rules = [] to delete",
        rule=None,
        field="LifecycleConfiguration.Rules",
    ),
    "integer over 64 bits": case(
        HEAD + "Expiration = { Days = 99999999999999999999999 }\n",
        "must be at most 9223372036854775807",
        field="Expiration.Days",
    ),
    # values S3 would refuse
    "status not exact": case(
        HEAD.replace('"Enabled"', '"enabled"') + DAYS,
        "Status 'enabled' must be exactly 'Enabled' or 'Disabled' (did you mean 'Enabled'?)",
        field="Status",
    ),
    "days zero": case(
        HEAD + "Expiration = { Days = 0 }\n", "Days is 0; it must be a positive integer", field="Expiration.Days"
    ),
    "date not midnight": case(
        HEAD + "Expiration = { Date = 2030-01-01T12:00:00Z }\n", "is not at midnight UTC", field="Expiration.Date"
    ),
    "transition too early": case(
        HEAD + 'Transitions = [ { Days = 10, StorageClass = "STANDARD_IA" } ]\n',
        "S3 requires at least 30 days before STANDARD_IA",
        field="Transitions[0].Days",
    ),
    "rule id too long": case(
        HEAD.replace('"r1"', '"' + "x" * 300 + '"') + DAYS,
        "rule ID is 300 characters; S3 allows 1 to 255",
        rule="x" * 300,
        field="ID",
    ),
    "and with one predicate": case(
        HEAD.replace('Filter = { Prefix = "logs/" }', 'Filter = { And = { Prefix = "logs/" } }') + DAYS,
        "And holds fewer than two predicates",
        field="Filter.And",
    ),
    "no action": case(HEAD, "rule has no action", field="(actions)"),
    "abort with a tag filter": case(
        HEAD.replace('Filter = { Prefix = "logs/" }', 'Filter = { Tag = { Key = "k", Value = "v" } }')
        + "AbortIncompleteMultipartUpload = { DaysAfterInitiation = 3 }\n",
        "AbortIncompleteMultipartUpload cannot be used with a tag or object-size filter",
        field="AbortIncompleteMultipartUpload",
    ),
    "unknown TransitionDefaultMinimumObjectSize": case(
        'TransitionDefaultMinimumObjectSize = "all_storage_classes_64K"\n' + HEAD + DAYS,
        "'all_storage_classes_64K' is not one of all_storage_classes_128K, varies_by_storage_class",
        rule=None,
        field="TransitionDefaultMinimumObjectSize",
    ),
    # across files
    "duplicate rule id across files": case(
        HEAD + DAYS,
        "rule ID 'r1' is defined more than once for this bucket, in {dir}bad.toml and {dir}other.toml",
        field="ID",
        extra={"other.toml": (HEAD + "Expiration = { Days = 40 }\n").encode()},
        file="other.toml",
    ),
    "two TransitionDefaultMinimumObjectSize values": case(
        'TransitionDefaultMinimumObjectSize = "all_storage_classes_128K"\n' + HEAD + DAYS,
        "is 'varies_by_storage_class' here but 'all_storage_classes_128K' in {dir}bad.toml",
        rule=None,
        field="TransitionDefaultMinimumObjectSize",
        extra={
            "other.toml": (
                'TransitionDefaultMinimumObjectSize = "varies_by_storage_class"\n' + HEAD.replace('"r1"', '"r2"') + DAYS
            ).encode()
        },
        file="other.toml",
    ),
}


@dataclasses.dataclass
class RecordingS3(MemoryS3):
    """The in-memory account, remembering which buckets were written."""

    writes: list[str] = dataclasses.field(default_factory=list)

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.writes.append(bucket.name)
        await super().put_lifecycle(bucket, config)

    async def delete_lifecycle(self, bucket: BucketRef) -> None:
        self.writes.append(bucket.name)
        await super().delete_lifecycle(bucket)


def run_memory_cycle(files: dict[str, bytes]) -> tuple[RecordingS3, CycleReport]:
    s3 = RecordingS3()
    s3.add_bucket(BAD, LifecycleConfig((STALE,)))
    s3.add_bucket(GOOD)
    for name, data in {**files, "good.toml": GOOD_FILE}.items():
        s3.objects[f"definition/{name}"] = data
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=4, history=History(s3))
    report = anyio.run(reconciler.run_cycle)
    return s3, report


@pytest.mark.parametrize("name", DEFINITION_CASES)
def test_a_malformed_definition_names_what_and_where_and_only_its_bucket_is_skipped(name: str) -> None:
    bad = DEFINITION_CASES[name]
    s3, report = run_memory_cycle(bad.files)
    assert report.definitions is not None
    path = f"definition/{bad.file}"
    errors = [p for p in report.definitions.problems if p.is_error and p.file == path]
    assert errors, f"no error for {path}: {report.definitions.problems}"
    message = bad.expected("definition/")
    problem = next((p for p in errors if message in p.message), errors[0])
    assert message in problem.message, problem
    assert (problem.bucket, problem.rule, problem.field) == (bad.bucket, bad.rule, bad.field), problem
    line = str(problem)
    assert line.startswith(f"{path}: {bad.bucket or '-'}: {bad.rule or '-'}: {bad.field or '-'}: "), line

    results = {r.bucket: r for r in report.results}
    if bad.bucket is None:  # the file's buckets are unknown: the picture is partial, nothing removed
        assert path in report.definitions.unreadable
        assert BAD not in results
    else:
        assert results[BAD].state is BucketState.INVALID
        error = results[BAD].error
        assert error is not None
        assert f"{path}: {BAD}: " in error
    assert BAD not in s3.writes, "the affected bucket was written"
    assert s3.lifecycles[BAD] == LifecycleConfig((STALE,))
    assert results[GOOD].state is BucketState.CHANGED, "the other bucket did not proceed"
    assert [r.id for r in s3.lifecycles[GOOD].rules] == ["g1"]


@pytest.mark.parametrize(
    "name", ["toml syntax", "not utf-8", "oversize", "unknown key", "duplicate rule id across files"]
)
def test_lakecircle_validate_prints_the_same_file_bucket_rule_and_field(name: str, tmp_path: Path) -> None:
    bad = DEFINITION_CASES[name]
    for file, data in bad.files.items():
        (tmp_path / file).write_bytes(data)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 1, result.output
    where = f"{tmp_path / bad.file}: {bad.bucket or '-'}: {bad.rule or '-'}: {bad.field or '-'}: "
    lines = [line for line in result.output.splitlines() if line.startswith(where)]
    assert any(bad.expected(f"{tmp_path}/") in line for line in lines), result.output


# -- settings -----------------------------------------------------------------------------

SETTING_CASES: dict[str, tuple[str, str]] = {
    "endpoint": ("http://bucket/prefix", "expected an S3 URI such as s3://"),
    "aws_account": ("12345", "expected a 12-digit AWS account ID"),
    "events_queue": ("my-queue", "expected the queue's URL, such as https://sqs.eu-west-1.amazonaws.com/"),
    "actions": ("APPLY", "Input should be 'SYNC' or 'DRYRUN', got \"APP…\" (5 characters)"),
    "action_params": ("{not json", 'expected a JSON object such as {"buckets": ["a", "b"]}'),
    "app_level": ("LOUD", "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    "log_format": ("XML", "'TEXT', 'COLORTEXT' or 'JSON', got \"XML\""),
    "concurrency": ("0", "0 is out of range; expected 1 to 1,024 buckets at once"),
    "verify_account": ("maybe", "expected true or false"),
    "content_md5": ("perhaps", "expected true or false"),
    "probe_server": ("often", "expected true or false"),
    "poll_interval": ("-1", "-1 is out of range; expected 1 to 86,400 seconds"),
    "resync_interval": ("0", "0 is out of range; expected 1 to 604,800 seconds"),
    "metrics_addr": ("localhost", "expected HOST:PORT such as 127.0.0.1:9739"),
    "max_requests_per_second": ("-5", "expected 0 (no limit) or 0.1 to 100,000 requests per second"),
    "shutdown_timeout": ("-1", "-1 is out of range; expected 0 to 3,600 seconds"),
    "retry_max_attempts": ("0", "0 is out of range; expected 1 to 100 attempts"),
    "retry_base_delay": ("0", "0 is out of range; expected 0.01 to 60 seconds"),
    "retry_max_delay": ("fast", "expected a number: 0.01 to 3,600 seconds"),
    "cycle_deadline": ("0", "0 is out of range; expected 1 to 86,400 seconds"),
    "max_removals": ("-1", "-1 is out of range; expected 0 to 1,000,000,000 rule removals"),
    "allow_mass_removal": ("sometimes", "expected true or false"),
    "settle_seconds": ("-3", "-3 is out of range; expected 0 to 86,400 seconds"),
    "accounts": ("organisation", 'expected "organization" exactly (lower case, singular)'),
    "account_filter": ("env=prod,,team=data", "item 2 is empty"),
    "role_name": ("lake circle", "the role name is not one IAM allows"),
    "lease_seconds": ("2", "2 is out of range; expected 0 (leases off: run one replica only) or 6 to 3,600 seconds"),
    "replica_id": ("pod #1", "expected 1 to 128 letters, digits, '.', '_' or '-'"),
    "storage_classes": ("WARM,tier two", "name(s) 2 of the 2 are not storage class names: each is 1 to 64"),
}

MORE_SETTING_CASES: list[tuple[str, str, str]] = [
    ("LCC_ACTION_PARAMS", '{"bucket": ["a"]}', '1 unknown key(s) (did you mean "buckets"?)'),
    ("LCC_ACTION_PARAMS", '{"buckets": "a"}', '"buckets" must be a list of bucket names'),
    ("LCC_ACTION_PARAMS", "[1]", "expected a JSON object"),
    ("LCC_CONCURRENCY", "many", "expected a whole number: 1 to 1,024 buckets at once"),
    ("LCC_CONCURRENCY", "5000", "5,000 is out of range"),
    ("LCC_METRICS_ADDR", "127.0.0.1:99999", "expected HOST:PORT"),
    ("LCC_POLL_INTERVAL", "nan", "expected a number: 1 to 86,400 seconds"),
    ("LCC_POLL_INTERVALS", "3", "not a LakeCircle setting (did you mean 'LCC_POLL_INTERVAL'?)"),
    ("LCC_STORAGE_CLASSES", "WARM,", "a name is empty (two commas in a row, or one at an end)"),
    ("LCC_STORAGE_CLASSES", '["WARM", 3]', 'expected a JSON list of names such as ["WARM", "COLD"]'),
    ("LCC_STORAGE_CLASSES", "DEEP_ARCHIVE", "DEEP_ARCHIVE is S3's own (its rules apply)"),
    ("LCC_STORAGE_CLASSES", "WARM,glacier", "glacier is GLACIER in other case, which S3 refuses"),
    ("LCC_STORAGE_CLASSES", '{"WARM": "tier"}', 'expected a JSON list of names such as ["WARM", "COLD"]'),
]

FREE_FORM = {"app_name"}
"""Settings with no wrong value: any string is a name."""

KNOWN_GAPS: list[tuple[str, str, str]] = [
    ("LCC_AWS_REGION", "Europe (Ireland)", "LCC_AWS_REGION"),
    ("LCC_POLL_INTERVAL", "inf", "LCC_POLL_INTERVAL"),
    ("LCC_CYCLE_DEADLINE", "inf", "LCC_CYCLE_DEADLINE"),
]
"""Values the settings accept although they cannot work: reported, to be fixed in settings.py."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.upper().startswith("LCC_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def problems_for(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> list[str]:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.problems


def test_the_settings_catalogue_covers_every_setting() -> None:
    assert set(SETTING_CASES) | FREE_FORM | {"aws_region"} == set(Settings.model_fields)


@pytest.mark.parametrize("field", SETTING_CASES)
def test_a_malformed_setting_names_its_variable_and_the_form_expected(
    field: str, clean_env: pytest.MonkeyPatch
) -> None:
    value, message = SETTING_CASES[field]
    variable = f"LCC_{field.upper()}"
    problems = problems_for(clean_env, variable, value)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{variable}: "), problems
    assert message in problems[0], problems


@pytest.mark.parametrize(("variable", "value", "message"), MORE_SETTING_CASES)
def test_more_malformed_settings(variable: str, value: str, message: str, clean_env: pytest.MonkeyPatch) -> None:
    problems = problems_for(clean_env, variable, value)
    assert [p for p in problems if p.startswith(f"{variable}: ") and message in p], problems


@pytest.mark.parametrize(("variable", "value", "name"), KNOWN_GAPS)
def test_values_that_cannot_work_are_refused_at_start(
    variable: str, value: str, name: str, clean_env: pytest.MonkeyPatch
) -> None:
    problems = problems_for(clean_env, variable, value)
    assert any(p.startswith(name) for p in problems), problems


def test_every_bad_setting_is_reported_at_once_by_the_command_line(clean_env: pytest.MonkeyPatch) -> None:
    for field, (value, _) in SETTING_CASES.items():
        clean_env.setenv(f"LCC_{field.upper()}", value)
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 1
    for field, (_, message) in SETTING_CASES.items():
        assert f"LCC_{field.upper()}: " in result.output, result.output
        assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_a_base_delay_over_the_cap_is_a_configuration_error_naming_both(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    clean_env.setenv("LCC_AWS_REGION", MOTO_REGION)
    clean_env.setenv("LCC_RETRY_BASE_DELAY", "5")
    clean_env.setenv("LCC_RETRY_MAX_DELAY", "1")
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(Path(__file__).parent)])
    assert result.exit_code == 1
    assert "LCC_RETRY_BASE_DELAY: 5 s is more than LCC_RETRY_MAX_DELAY (1 s)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- S3 answers ---------------------------------------------------------------------------

ENDPOINT = "answers-endpoint"
XML = b'<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'


def rule_xml(rule_id: str, body: bytes) -> bytes:
    return XML + b"<Rule><ID>" + rule_id.encode() + b"</ID>" + body + b"</Rule></LifecycleConfiguration>"


ANSWER_CASES: dict[str, tuple[Fault | bytes, str]] = {
    "not xml": (b"\x00\x9f garbage \xff", "without a readable S3 error document"),
    "truncated": (Fault.TRUNCATE, "Connection was closed before we received a valid response"),
    "an html page": (b"<html><body>502 proxy error</body></html>", "got a <html> document"),
    "empty": (b"", "got no XML document"),
    "another operation's document": (
        b'<?xml version="1.0"?><ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>',
        "expected a <LifecycleConfiguration> document in the answer, got a <ListAllMyBucketsResult> document",
    ),
    "rule without Status": (
        rule_xml("r-1", b"<Filter><Prefix>a/</Prefix></Filter><Expiration><Days>5</Days></Expiration>"),
        "rule 'r-1': Status: Field required",
    ),
    "transition without StorageClass": (
        rule_xml("r-2", b"<Status>Enabled</Status><Filter/><Transition><Days>40</Days></Transition>"),
        "rule 'r-2': Transitions.0.StorageClass: Field required",
    ),
    "days not a number": (
        rule_xml("r-3", b"<Status>Enabled</Status><Filter/><Expiration><Days>abc</Days></Expiration>"),
        "could not be parsed: invalid literal for int()",
    ),
    "date not a date": (
        rule_xml("r-4", b"<Status>Enabled</Status><Filter/><Expiration><Date>someday</Date></Expiration>"),
        'could not be parsed: Invalid timestamp "someday"',
    ),
    "size over 64 bits": (
        rule_xml(
            "r-5",
            b"<Status>Enabled</Status><Filter><ObjectSizeGreaterThan>99999999999999999999999</ObjectSizeGreaterThan>"
            b"</Filter><Expiration><Days>5</Days></Expiration>",
        ),
        "rule 'r-5': Filter.ObjectSizeGreaterThan",
    ),
}


def live_ids(s3_client: Any, bucket: str) -> list[str]:
    try:
        return [
            r.id or "" for r in config_from_response(s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)).rules
        ]
    except s3_client.exceptions.ClientError:
        return []


@pytest.fixture
def answers(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """Two buckets wanting a rule, the affected one holding another; the proxy in front of moto."""
    s3_client.create_bucket(Bucket=ENDPOINT)
    for bucket in (BAD, GOOD):
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_object(
            Bucket=ENDPOINT, Key=f"lc/definition/{bucket}.toml", Body=definition(bucket, rule("want", prefix="logs/"))
        )
    s3_client.put_bucket_lifecycle_configuration(Bucket=BAD, **config_to_request(LifecycleConfig((STALE,))))
    for name in [n for n in os.environ if n.startswith("LCC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LCC_ENDPOINT", f"s3://{ENDPOINT}/lc/")
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    with FaultProxy(moto) as proxy:
        yield proxy
    assert not proxy.errors, proxy.errors


async def one_cycle(proxy: FaultProxy) -> CycleReport:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=policy) as adapter:
        reconciler = build_reconciler(load_settings(), Account(adapter, None), None, dry_run=False)
        with anyio.fail_after(60):
            return await reconciler.run_cycle("catalogue")


@pytest.mark.parametrize("name", ANSWER_CASES)
def test_a_malformed_lifecycle_answer_fails_its_bucket_by_name_and_nothing_is_written_to_it(
    name: str, answers: FaultProxy, s3_client: Any
) -> None:
    what, message = ANSWER_CASES[name]
    answers.force("GetBucketLifecycleConfiguration", BAD, what)
    report = anyio.run(one_cycle, answers)
    results = {r.bucket: r for r in report.results}
    bad = results[BAD]
    assert bad.state is BucketState.FAILED, bad
    assert bad.stage == "read", bad
    assert bad.error is not None
    assert bad.error.startswith(f"bucket {BAD}: GetBucketLifecycleConfiguration failed"), bad.error
    assert message in bad.error, bad.error
    writes = [e for e in answers.bucket_events(BAD) if e.operation != "GetBucketLifecycleConfiguration"]
    assert writes == [], writes
    assert live_ids(s3_client, BAD) == ["live-rule"]
    assert results[GOOD].state is BucketState.CHANGED, results[GOOD]
    assert live_ids(s3_client, GOOD) == ["want"]


@pytest.mark.parametrize(
    ("operation", "fatal"),
    [
        ("ListBuckets", "could not list the account's buckets: ListBuckets failed: the response could not be parsed"),
        ("ListObjectsV2", f"cannot list the definitions at s3://{ENDPOINT}/lc/definition/"),
    ],
)
def test_an_unreadable_listing_stops_the_cycle_before_any_write(
    operation: str, fatal: str, answers: FaultProxy, s3_client: Any
) -> None:
    answers.force(operation, None if operation == "ListBuckets" else ENDPOINT, b"<html><body>oops</body></html>")
    report = anyio.run(one_cycle, answers)
    assert report.fatal is not None
    assert fatal in report.fatal, report.fatal
    assert "got a <html> document" in report.fatal, report.fatal
    writes = [e for e in answers.events if e.operation in LIFECYCLE_OPERATIONS - {"GetBucketLifecycleConfiguration"}]
    assert writes == [], writes
    assert live_ids(s3_client, BAD) == ["live-rule"]
    assert live_ids(s3_client, GOOD) == []
