"""``LCC_EVENTS_QUEUE``'s value: a queue's URL read into account, name and region, or what to write instead."""

from __future__ import annotations

import pytest

from lakecircle.core.queue_url import QueueUrl, parse_queue_url, queue_url_problem


@pytest.mark.parametrize(
    ("url", "account", "name", "region"),
    [
        pytest.param(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/lakecircle-events",
            "123456789012",
            "lakecircle-events",
            "eu-west-1",
            id="AWS's endpoint",
        ),
        pytest.param(
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q_1",
            "123456789012",
            "q_1",
            "cn-north-1",
            id="China",
        ),
        pytest.param(
            "https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/q",
            "123456789012",
            "q",
            "us-gov-west-1",
            id="a FIPS endpoint in GovCloud",
        ),
        pytest.param(
            "https://vpce-0a1b2c3d-ab12cd34.sqs.ap-southeast-2.vpce.amazonaws.com/123456789012/q",
            "123456789012",
            "q",
            "ap-southeast-2",
            id="a VPC endpoint",
        ),
        pytest.param(
            "https://eu-central-1.queue.amazonaws.com/123456789012/q",
            "123456789012",
            "q",
            "eu-central-1",
            id="the legacy form with a region",
        ),
        pytest.param(
            "https://queue.amazonaws.com/123456789012/q",
            "123456789012",
            "q",
            "us-east-1",
            id="the legacy form of us-east-1",
        ),
        pytest.param(
            "http://127.0.0.1:4566/000000000000/events.fifo",
            "000000000000",
            "events.fifo",
            None,
            id="a local server has no region in its host",
        ),
    ],
)
def test_a_queue_url_reads_as_its_account_name_and_region(
    url: str, account: str, name: str, region: str | None
) -> None:
    assert parse_queue_url(url) == QueueUrl(url, account, name, region)
    assert queue_url_problem(url) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("arn:aws:sqs:eu-west-1:123456789012:q", "is a queue's ARN; give the queue's URL", id="an ARN"),
        pytest.param("lakecircle-events", "get-queue-url", id="a bare name"),
        pytest.param("ftp://sqs.eu-west-1.amazonaws.com/123456789012/q", "https://", id="another scheme"),
        pytest.param("https:///123456789012/q", "with a host", id="no host"),
        pytest.param(
            "https://sqs.eu-west-1.amazonaws.com:x/123456789012/q", "not a URL", id="a port that is no number"
        ),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/123456789012/q?a=b", "query", id="a query"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/12345/q", "/<12-digit account>/", id="a short account"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/123456789012/", "<queue name>", id="no name"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/123456789012/q/", "<queue name>", id="a trailing slash"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/123456789012/a.b", "<queue name>", id="a dot in a name"),
        pytest.param("https://sqs.eu-west-1.amazonaws.com/123456789012/" + "q" * 81, "1 to 80", id="a name too long"),
    ],
)
def test_anything_else_is_refused_with_the_form_to_write(text: str, fragment: str) -> None:
    problem = queue_url_problem(text)

    assert problem is not None
    assert fragment in problem


def test_a_url_holding_a_password_is_refused_without_showing_it() -> None:
    problem = queue_url_problem("https://AKIDEXAMPLE:s3cr3t@sqs.eu-west-1.amazonaws.com/123456789012/q")

    assert problem is not None
    assert "password" in problem
    assert "s3cr3t" not in problem
    assert "AKIDEXAMPLE" not in problem
