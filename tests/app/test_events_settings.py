"""``LCC_EVENTS_QUEUE``: unset or empty means no events; otherwise an SQS queue's URL, refused
naming the setting, what to write instead and how to turn events off, never showing the value."""

from __future__ import annotations

import pytest

from lakecircle.core.queue_url import QueueUrl
from lakecircle.errors import ConfigError
from lakecircle.settings import load_settings
from tests.helpers import only_settings

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/lakecircle-events"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return only_settings(monkeypatch, LCC_AWS_REGION="eu-west-1")


def problems_with(env: pytest.MonkeyPatch, value: str) -> list[str]:
    env.setenv("LCC_EVENTS_QUEUE", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.problems


def test_without_lcc_events_queue_there_are_no_events(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.events_queue is None
    assert settings.events_queue_url is None


def test_an_empty_lcc_events_queue_means_no_events_too(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_EVENTS_QUEUE", "")

    assert load_settings().events_queue_url is None


def test_a_queue_url_is_read_with_its_account_name_and_region(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_EVENTS_QUEUE", URL)
    settings = load_settings()

    assert settings.events_queue == URL
    assert settings.events_queue_url == QueueUrl(URL, "123456789012", "lakecircle-events", "eu-west-1")


def test_a_command_line_override_is_checked_as_the_environment_is(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(events_queue="lakecircle-events")
    assert caught.value.problems[0].startswith("LCC_EVENTS_QUEUE: expected the queue's URL")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("arn:aws:sqs:eu-west-1:123456789012:lakecircle-events", "ARN", id="an ARN"),
        pytest.param("lakecircle-events", "get-queue-url", id="a bare name"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/lakecircle-events", "12-digit account", id="no account"),
    ],
)
def test_anything_but_a_queue_url_is_refused_naming_the_setting_and_the_way_out(
    env: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    problems = problems_with(env, value)

    assert len(problems) == 1
    assert problems[0].startswith("LCC_EVENTS_QUEUE: ")
    assert fragment in problems[0]
    assert "https://sqs.eu-west-1.amazonaws.com/123456789012/lakecircle-events" in problems[0]
    assert "; unset it (or leave it empty) to run without events, got " in problems[0]


def test_a_refused_queue_url_is_not_shown_in_the_error(env: pytest.MonkeyPatch) -> None:
    problems = problems_with(env, "https://AKIDEXAMPLE:wJalrXUtnFEMI@sqs.eu-west-1.amazonaws.com/123456789012/q")

    assert "wJalr" not in problems[0]
    assert "AKIDEX" not in problems[0]
    assert "password" in problems[0]


def test_an_invalid_queue_is_reported_with_the_other_problems_at_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("LCC_CONCURRENCY", "0")
    problems = problems_with(env, "lakecircle-events")

    assert [p.split(":", 1)[0] for p in problems] == ["LCC_CONCURRENCY", "LCC_EVENTS_QUEUE"]
