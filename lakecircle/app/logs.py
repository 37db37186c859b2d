"""Logging: structlog, configured once by the command line, to standard error.

Events are snake_case names with fields (``bucket_reconciled bucket=... added=1``).
``LCC_LOG_FORMAT`` picks the renderer: AUTO (the default) is the console renderer on a
terminal and JSON otherwise; TREE and TEXT are the original design's names for the
console and key=value renderers, COLOR* their coloured forms. Values of keys that look
like secrets are masked before any renderer sees them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import structlog

from lakecircle.settings import LogFormat, LogLevel

_SECRET_KEY = re.compile(r"secret|token|password|credential|authorization|access_key", re.IGNORECASE)


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        if _SECRET_KEY.search(key):
            event[key] = "***"
    return event


def _tree(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """TREE: bucket lines hang under the line of their cycle."""
    if "bucket" in event:
        event["event"] = f"  └─ {event['event']}"
    return event


_WITHOUT_LOCALS: Final = structlog.dev.RichTracebackFormatter(show_locals=False)
"""A traceback's frames without their local variables: a frame of the SDK's credential code
holds a session's secret key and token (no secret reaches a log line)."""

_DICT_TRACEBACKS: Final = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
"""JSON tracebacks, likewise without locals."""


def configure_logging(
    level: LogLevel = LogLevel.INFO,
    fmt: LogFormat = LogFormat.AUTO,
    *,
    app_name: str = "LakeCircle",
    stream: TextIO | None = None,
) -> None:
    stream = stream or sys.stderr
    tty = stream.isatty()
    renderer: Any
    if fmt is LogFormat.AUTO:
        fmt = LogFormat.COLORTREE if tty else LogFormat.JSON
    if fmt in (LogFormat.TREE, LogFormat.COLORTREE):
        renderer = structlog.dev.ConsoleRenderer(
            colors=fmt is LogFormat.COLORTREE, sort_keys=True, exception_formatter=_WITHOUT_LOCALS
        )
    elif fmt is LogFormat.TEXT:
        renderer = structlog.processors.LogfmtRenderer(sort_keys=True)
    elif fmt is LogFormat.COLORTEXT:
        renderer = structlog.dev.ConsoleRenderer(
            colors=True, pad_event_to=0, sort_keys=True, exception_formatter=_WITHOUT_LOCALS
        )
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        lambda _, __, event: {"app": app_name, **event},
        _mask_secrets,
    ]
    if fmt is LogFormat.JSON:
        processors.append(_DICT_TRACEBACKS)
    if fmt in (LogFormat.TREE, LogFormat.COLORTREE):
        processors.append(_tree)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.value)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
