"""Settings: every problem at once, naming the variable and the expected form."""

from __future__ import annotations

import pytest

from lakecircle.errors import ConfigError
from lakecircle.settings import ActionMode, LogFormat, load_settings

BASE = {
    "LCC_ENDPOINT": "s3://lakecircle-config/lifecycle/",
    "LCC_AWS_ACCOUNT": "123456789012",
    "LCC_AWS_REGION": "eu-west-1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(__import__("os").environ):
        if key.startswith("LCC_"):
            monkeypatch.delenv(key)
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


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
