"""Logging: one JSON object per line with the app name, secrets masked, TREE indents buckets."""

from __future__ import annotations

import io
import json

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
