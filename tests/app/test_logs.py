"""Logging: one JSON object per line with the app name, secrets masked, TREE indents buckets."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from lakecircle.app.logs import configure_logging
from lakecircle.settings import LogFormat, LogLevel


def test_json_lines_carry_the_app_name_and_fields() -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, app_name="lcc-prod", stream=out)
    structlog.get_logger().info("bucket_reconciled", bucket="b1", added=2)
    line = json.loads(out.getvalue())
    assert line["event"] == "bucket_reconciled"
    assert line["app"] == "lcc-prod"
    assert line["bucket"] == "b1"
    assert line["added"] == 2
    assert line["level"] == "info"


def test_level_filters_debug_lines() -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=out)
    structlog.get_logger().debug("bucket_reconciled", bucket="b1")
    assert out.getvalue() == ""


def test_secret_looking_fields_are_masked() -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.JSON, stream=out)
    structlog.get_logger().info("x", aws_secret_access_key="AKIASECRETVALUE", session_token="tok123")
    text = out.getvalue()
    assert "AKIASECRETVALUE" not in text
    assert "tok123" not in text


def test_tree_indents_bucket_lines_under_the_cycle_line() -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.TREE, stream=out)
    log = structlog.get_logger()
    log.info("bucket_reconciled", bucket="b1")
    log.info("cycle_finished", changed=1)
    bucket_line, cycle_line = out.getvalue().splitlines()
    assert "└─ bucket_reconciled" in bucket_line
    assert "└─" not in cycle_line
    assert "\x1b[" not in out.getvalue()  # TREE has no colour codes


def test_text_is_key_value() -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, LogFormat.TEXT, stream=out)
    structlog.get_logger().info("cycle_finished", changed=1)
    assert "event=cycle_finished" in out.getvalue()
    assert "changed=1" in out.getvalue()


SESSION = ("-".join(("wJalrXUtnFEMI", "not", "a", "real", "key")), "".join(("FwoGZXIvYXdz", "EXAMPLE")))
"""A session's secret key and token, held in a frame's locals (built here: a traceback may show
the source lines around the raise, never the values)."""


@pytest.mark.parametrize("fmt", [LogFormat.JSON, LogFormat.TREE, LogFormat.COLORTREE, LogFormat.COLORTEXT])
def test_a_logged_traceback_shows_no_frames_local_variables(fmt: LogFormat) -> None:
    out = io.StringIO()
    configure_logging(LogLevel.INFO, fmt, stream=out)

    def renew(secret: str, token: str) -> None:
        credentials = {"SecretAccessKey": secret, "SessionToken": token}
        raise KeyError("Expiration" if credentials else "")

    try:
        renew(*SESSION)
    except KeyError:
        structlog.get_logger("t").exception("account_crashed")
    text = out.getvalue()
    assert "account_crashed" in text
    assert "KeyError" in text
    assert "wJalrXUtnFEMI" not in text
    assert "FwoGZXIvYXdz" not in text
