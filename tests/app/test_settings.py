"""Settings: every problem at once (the missing ones too), naming the variable, the expected form
and the range, and never showing a secret."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakecircle.app.cli import cli
from lakecircle.errors import ConfigError
from lakecircle.setting_values import RANGES, number
from lakecircle.settings import ActionMode, LogFormat, Settings, env_name, load_settings
from tests.helpers import only_settings

BASE = {
    "LCC_ENDPOINT": "s3://lakecircle-config/lifecycle/",
    "LCC_AWS_ACCOUNT": "123456789012",
    "LCC_AWS_REGION": "eu-west-1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return only_settings(monkeypatch, **BASE)


def test_original_variables_are_read_with_types(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_ACTIONS", "dryrun")
    env.setenv("LCC_ACTION_PARAMS", '{"buckets": ["a", "b"]}')
    env.setenv("LCC_LOG_FORMAT", "TEXT")
    env.setenv("LCC_CONCURRENCY", "32")
    settings = load_settings()
    assert settings.actions is ActionMode.DRYRUN
    assert settings.dry_run
    assert settings.bucket_filter == frozenset({"a", "b"})
    assert settings.log_format is LogFormat.TEXT
    assert settings.concurrency == 32
    assert settings.definition_uri == "s3://lakecircle-config/lifecycle/definition/"
    assert settings.endpoint_parts == ("lakecircle-config", "lifecycle/")


def test_endpoint_without_trailing_slash_is_completed(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_ENDPOINT", "s3://lakecircle-config/lifecycle")
    assert load_settings().endpoint == "s3://lakecircle-config/lifecycle/"


def test_every_problem_is_reported_at_once_with_its_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_ENDPOINT", "https://example.com/x")
    env.setenv("LCC_AWS_ACCOUNT", "12345")
    env.setenv("LCC_ACTIONS", "APPLY")
    env.setenv("LCC_ACTION_PARAMS", "{not json")
    env.setenv("LCC_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = "\n".join(caught.value.problems)
    for name in ("LCC_ENDPOINT", "LCC_AWS_ACCOUNT", "LCC_ACTIONS", "LCC_ACTION_PARAMS", "LCC_CONCURRENCY"):
        assert name in text
    assert "s3://" in text  # says what form is expected
    assert "JSON object" in text
    assert len(caught.value.problems) == 5


def test_mistyped_variable_is_an_error_with_a_suggestion(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_CONCURENCY", "8")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == ["LCC_CONCURENCY: not a LakeCircle setting (did you mean 'LCC_CONCURRENCY'?)"]


def test_action_params_must_be_an_object_with_known_keys(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_ACTION_PARAMS", '["a"]')
    with pytest.raises(ConfigError, match="LCC_ACTION_PARAMS: expected a JSON object"):
        load_settings()
    env.setenv("LCC_ACTION_PARAMS", '{"bukets": []}')
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings()


def test_missing_required_settings_are_named_together(env: pytest.MonkeyPatch) -> None:
    env.delenv("LCC_AWS_ACCOUNT")
    env.delenv("LCC_AWS_REGION")
    settings = load_settings()
    with pytest.raises(ConfigError) as caught:
        settings.require("endpoint", "aws_account", "aws_region")
    assert [p.split(":")[0] for p in caught.value.problems] == ["LCC_AWS_ACCOUNT", "LCC_AWS_REGION"]


def test_cli_overrides_win_over_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_CONCURRENCY", "4")
    assert load_settings(concurrency=64).concurrency == 64
    assert load_settings(concurrency=None).concurrency == 4


# -- one round: the invalid and the missing together --------------------------------------


def test_an_invalid_region_does_not_hide_the_missing_account_and_endpoint(env: pytest.MonkeyPatch) -> None:
    env.delenv("LCC_ENDPOINT")
    env.delenv("LCC_AWS_ACCOUNT")
    env.setenv("LCC_AWS_REGION", "Europe (Ireland)")
    with pytest.raises(ConfigError) as caught:
        load_settings(required=("endpoint", "aws_account", "aws_region"))
    named = sorted(p.split(":")[0] for p in caught.value.problems)
    assert named == ["LCC_AWS_ACCOUNT", "LCC_AWS_REGION", "LCC_ENDPOINT"]
    assert "LCC_AWS_ACCOUNT: required but not set" in "\n".join(caught.value.problems)


def test_a_required_setting_that_is_invalid_is_reported_once_as_invalid(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_AWS_ACCOUNT", "12345")
    with pytest.raises(ConfigError) as caught:
        load_settings(required=("aws_account",))
    assert [p.split(":")[0] for p in caught.value.problems] == ["LCC_AWS_ACCOUNT"]
    assert "12-digit" in caught.value.problems[0]


def test_the_endpoint_needed_only_for_writing_is_not_required_of_a_dry_run(env: pytest.MonkeyPatch) -> None:
    env.delenv("LCC_ENDPOINT")
    env.setenv("LCC_ACTIONS", "dryrun")
    assert load_settings(required_to_write=("endpoint",)).endpoint is None
    env.delenv("LCC_ACTIONS")
    with pytest.raises(ConfigError, match="LCC_ENDPOINT: required but not set"):
        load_settings(required_to_write=("endpoint",))
    assert load_settings(required_to_write=("endpoint",), actions="DRYRUN").dry_run


def test_the_command_line_names_the_invalid_and_the_missing_in_one_run(env: pytest.MonkeyPatch) -> None:
    env.delenv("LCC_ENDPOINT")
    env.delenv("LCC_AWS_ACCOUNT")
    env.setenv("LCC_AWS_REGION", "Europe (Ireland)")
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 1
    for problem in (
        "LCC_AWS_REGION: expected an AWS region code",
        "LCC_AWS_ACCOUNT: required but not set",
        "LCC_ENDPOINT: required but not set",
    ):
        assert problem in result.output, result.output
    assert "Traceback" not in result.output


# -- ranges: every numeric setting, with its unit -----------------------------------------

RANGE_CASES = [
    # variable, refused below, refused above, the range as messages and the README say it
    ("LCC_CONCURRENCY", "0", "1025", "1 to 1,024 buckets at once"),
    ("LCC_POLL_INTERVAL", "0.5", "86401", "1 to 86,400 seconds"),
    ("LCC_RESYNC_INTERVAL", "0.5", "604801", "1 to 604,800 seconds"),
    ("LCC_MAX_REQUESTS_PER_SECOND", "1e-300", "100001", "0 (no limit) or 0.1 to 100,000 requests per second"),
    ("LCC_SHUTDOWN_TIMEOUT", "-1", "3601", "0 to 3,600 seconds"),
    ("LCC_RETRY_MAX_ATTEMPTS", "0", "101", "1 to 100 attempts"),
    ("LCC_RETRY_BASE_DELAY", "0.001", "61", "0.01 to 60 seconds"),
    ("LCC_RETRY_MAX_DELAY", "0.001", "3601", "0.01 to 3,600 seconds"),
    ("LCC_CYCLE_DEADLINE", "0.5", "86401", "1 to 86,400 seconds"),
    ("LCC_MAX_REMOVALS", "-1", "1000000001", "0 to 1,000,000,000 rule removals"),
    ("LCC_SETTLE_SECONDS", "-1", "86401", "0 to 86,400 seconds"),
    ("LCC_LEASE_SECONDS", "5", "3601", "0 (leases off: run one replica only) or 6 to 3,600 seconds"),
]


@pytest.mark.parametrize(("variable", "low", "high", "span"), RANGE_CASES)
def test_a_numeric_setting_outside_its_range_is_refused_naming_range_and_unit(
    variable: str, low: str, high: str, span: str, env: pytest.MonkeyPatch
) -> None:
    for value in (low, high):
        env.setenv(variable, value)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert caught.value.problems == [f"{variable}: {number(float(value))} is out of range; expected {span}"]


def test_a_rate_of_1e_300_requests_per_second_is_refused_and_0_means_no_limit(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_MAX_REQUESTS_PER_SECOND", "1e-300")
    with pytest.raises(ConfigError, match=r"LCC_MAX_REQUESTS_PER_SECOND: 1e-300 is out of range"):
        load_settings()
    env.setenv("LCC_MAX_REQUESTS_PER_SECOND", "0")
    assert load_settings().max_requests_per_second == 0
    env.setenv("LCC_MAX_REQUESTS_PER_SECOND", "0.1")
    assert load_settings().max_requests_per_second == 0.1


def test_leases_last_30_seconds_by_default_and_0_turns_them_off(env: pytest.MonkeyPatch) -> None:
    assert load_settings().lease_seconds == 30
    env.setenv("LCC_LEASE_SECONDS", "0")
    assert load_settings().lease_seconds == 0
    env.setenv("LCC_LEASE_SECONDS", "0.5")
    with pytest.raises(ConfigError, match=r"LCC_LEASE_SECONDS: 0.5 is out of range; expected 0 \(leases off"):
        load_settings()
    env.setenv("LCC_LEASE_SECONDS", "6")
    assert load_settings().lease_seconds == 6


# -- the replica's name --------------------------------------------------------------------


def test_the_replica_id_is_the_host_name_unless_set(env: pytest.MonkeyPatch) -> None:
    env.setattr(socket, "gethostname", lambda: "lakecircle-5d8f7c9b6-x2x7q")
    assert load_settings().replica_id == "lakecircle-5d8f7c9b6-x2x7q"
    env.setenv("LCC_REPLICA_ID", "replica.a_1")
    assert load_settings().replica_id == "replica.a_1"
    assert load_settings(replica_id="B-2").replica_id == "B-2"


@pytest.mark.parametrize("accepted", ["a", "x" * 128, "ip-10-0-0-1.eu-west-1.compute.internal", "Pod_7.b-c"])
def test_a_replica_id_of_letters_digits_dots_underscores_and_dashes_is_accepted(
    accepted: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("LCC_REPLICA_ID", accepted)
    assert load_settings().replica_id == accepted


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param("x" * 129, id="129 characters"),
        pytest.param("pod 1", id="a space"),
        pytest.param("pod/1", id="a slash, which would make a folder of a heartbeat's key"),
        pytest.param("réplica", id="a letter outside ASCII"),
        pytest.param('a"b', id="a quote"),
    ],
)
def test_a_replica_id_of_other_characters_or_too_long_is_refused_naming_the_rule(
    refused: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("LCC_REPLICA_ID", refused)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith("LCC_REPLICA_ID: expected 1 to 128 letters, digits, '.', '_' or '-'"), problem


def test_an_empty_replica_id_from_the_command_line_is_refused(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="LCC_REPLICA_ID: expected 1 to 128 letters"):
        load_settings(replica_id="")


def test_a_host_name_that_cannot_name_a_replica_asks_for_lcc_replica_id(env: pytest.MonkeyPatch) -> None:
    env.setattr(socket, "gethostname", lambda: "my host")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith("LCC_REPLICA_ID: "), problem
    assert "unset, it is the host name" in problem
    assert problem.endswith('got "my …" (7 characters)'), problem


def test_every_numeric_setting_has_a_range_and_the_readme_table_shows_it() -> None:
    numeric = {name for name, field in Settings.model_fields.items() if field.annotation in (int, float)}
    assert numeric == set(RANGES)
    assert {variable for variable, *_ in RANGE_CASES} == {f"LCC_{name.upper()}" for name in RANGES}
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `LCC_")}
    for variable, *_, span in RANGE_CASES:
        assert span in rows[variable], f"README's row of {variable} does not say {span!r}"


def test_defaults_are_within_their_ranges() -> None:
    for name, bounds in RANGES.items():
        default = Settings.model_fields[name].default
        assert default in bounds, name


# -- no secret in an error ----------------------------------------------------------------

SECRET = "ghp_Zq8X7vQk2Lw9Rt4Yp1Nb6Hc3Jd5Fg0W"


def secret_values() -> list[tuple[str, str]]:
    # Any string names an app, and a token's characters make a valid replica ID or storage class name:
    # none is refused.
    names = {"app_name", "replica_id", "storage_classes"}
    cases = [(f"LCC_{name.upper()}", SECRET) for name in Settings.model_fields if name not in names]
    cases += [
        ("LCC_REPLICA_ID", f"{SECRET}/+="),
        ("LCC_STORAGE_CLASSES", f"WARM,{SECRET}/+="),
        ("LCC_STORAGE_CLASSES", f'["{SECRET}'),
        ("LCC_ACTION_PARAMS", json.dumps({SECRET: ["a"]})),
        ("LCC_ACTION_PARAMS", json.dumps({"buckets": SECRET})),
        ("LCC_ACTION_PARAMS", "{" + SECRET),
        ("LCC_METRICS_ADDR", f"{SECRET}:99999"),
        ("LCC_ENDPOINT", f"s3://{SECRET}"),
    ]
    return cases


def leaked(output: str, secret: str, width: int = 4) -> list[str]:
    """The pieces of ``secret`` (``width`` characters or more) that ``output`` shows."""
    return [secret[i : i + width] for i in range(len(secret) - width + 1) if secret[i : i + width] in output]


@pytest.mark.parametrize(("variable", "value"), secret_values())
def test_a_secret_pasted_into_a_setting_never_reaches_the_output(
    variable: str, value: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv(variable, value)
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 1, result.output
    assert f"{variable}: " in result.output
    assert leaked(result.output, SECRET) == [], result.output
    if variable == "LCC_ACTION_PARAMS":
        assert leaked(result.output, SECRET, 3) == [], result.output


def test_a_refused_value_is_previewed_by_its_first_characters_and_its_length(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_LOG_FORMAT", "YAML-ish")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [
        "LCC_LOG_FORMAT: Input should be 'AUTO', 'TREE', 'COLORTREE', 'TEXT', 'COLORTEXT' or 'JSON',"
        ' got "YAM…" (8 characters)'
    ]
    env.setenv("LCC_LOG_FORMAT", "X\nY")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].endswith('got "X?Y"')


def test_an_ipv6_metrics_address_needs_brackets(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_METRICS_ADDR", "[::1]:9739")
    assert load_settings().metrics_host_port == ("::1", 9739)
    env.setenv("LCC_METRICS_ADDR", "::1:9739")
    with pytest.raises(ConfigError, match=r"LCC_METRICS_ADDR: expected an IPv6 host in brackets, such as \[::1\]:9739"):
        load_settings()


def test_the_readme_configuration_table_names_exactly_the_settings() -> None:
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    tabled = re.findall(r"^\| `(LCC_[A-Z0-9_]+)` \|", section, flags=re.MULTILINE)
    assert sorted(tabled) == sorted(env_name(field) for field in Settings.model_fields)
