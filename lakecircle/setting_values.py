"""What a setting's value may be, and how much of a refused one a message shows.

Every numeric setting has a range (:data:`RANGES`, the README's configuration table shows
the same) so that a value no one means, such as a rate of 1e-300 requests per second, is
refused at start instead of hanging the process; the account and the region have a form
(the endpoint's is :func:`lakecircle.s3_uri.check_endpoint`).

A setting's value may be a secret pasted into the wrong variable, and errors end up in
logs: an error shows at most a short preview of a value (:func:`preview`), and nothing
at all of a setting in :data:`NEVER_SHOWN`. Numbers that parsed are shown whole
(:func:`number`). :mod:`lakecircle.settings` applies all of it; this module holds the
values and the small functions, apart from the pydantic model.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

from lakecircle.core.queue_url import parse_queue_url
from lakecircle.core.validate.actions import STORAGE_CLASSES


def number(value: float) -> str:
    """A number as messages and the README show it: ``86,400``, ``0.1``, ``1e-300``."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts, with their unit."""

    low: float
    high: float
    unit: str
    off: str | None = None
    """What 0 means, when 0 switches the feature off (0 is then accepted below ``low``)."""

    def __contains__(self, value: float) -> bool:
        return (self.off is not None and value == 0) or self.low <= value <= self.high

    def __str__(self) -> str:
        span = f"{number(self.low)} to {number(self.high)} {self.unit}"
        return f"0 ({self.off}) or {span}" if self.off else span


RANGES: Final[Mapping[str, Range]] = {
    "concurrency": Range(1, 1_024, "buckets at once"),
    "poll_interval": Range(1, 86_400, "seconds"),
    "resync_interval": Range(1, 604_800, "seconds"),
    "max_requests_per_second": Range(0.1, 100_000, "requests per second", off="no limit"),
    "shutdown_timeout": Range(0, 3_600, "seconds"),
    "retry_max_attempts": Range(1, 100, "attempts"),
    "retry_base_delay": Range(0.01, 60, "seconds"),
    "retry_max_delay": Range(0.01, 3_600, "seconds"),
    "cycle_deadline": Range(1, 86_400, "seconds"),
    "max_removals": Range(0, 1_000_000_000, "rule removals"),
    "settle_seconds": Range(0, 86_400, "seconds"),
    "lease_seconds": Range(6, 3_600, "seconds", off="leases off: run one replica only"),
}
"""Every numeric setting's range: values outside it are refused at start, naming it."""


def check_account(value: str | None) -> str | None:
    """``LCC_AWS_ACCOUNT``: a 12-digit account ID."""
    if value is not None and not re.fullmatch(r"\d{12}", value):
        raise ValueError("expected a 12-digit AWS account ID such as 123456789012")
    return value


def check_region(value: str | None) -> str | None:
    """``LCC_AWS_REGION``: a region code."""
    if value is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        raise ValueError("expected an AWS region code such as eu-west-1")
    return value


def check_events_queue(value: str | None) -> str | None:
    """``LCC_EVENTS_QUEUE``: an SQS queue's URL (:mod:`lakecircle.core.queue_url` says what it may be)."""
    if value is not None:
        try:
            parse_queue_url(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; unset it (or leave it empty) to run without events") from None
    return value


REPLICA_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""``LCC_REPLICA_ID``'s form: a Kubernetes pod name or a host name fits, and it is safe in a JSON body,
an object key and a log line."""


def check_replica_id(value: str) -> str:
    """``LCC_REPLICA_ID``: 1 to 128 letters, digits, ``.``, ``_`` and ``-`` (the host name by default)."""
    if not REPLICA_ID.fullmatch(value):
        raise ValueError(
            "expected 1 to 128 letters, digits, '.', '_' or '-' naming this replica in the leases and change"
            " records (unset, it is the host name, which on Kubernetes is the pod name)"
        )
    return value


DEFAULT_ROLE_NAME: Final = "lakecircle"
"""``LCC_ROLE_NAME``'s default: the role the member-account template of ``deploy/aws/`` creates."""

ORGANIZATION: Final = "organization"


def check_accounts(value: str | None) -> str | None:
    """``LCC_ACCOUNTS``: ``organization``, or an accounts file: ``s3://bucket/key.toml`` or a
    local path ending in ``.toml`` (so that a misspelt ``organization`` is not taken for a path)."""
    if value is None or value == ORGANIZATION:
        return value
    if value.lower() == ORGANIZATION or difflib.get_close_matches(value.lower()[:40], [ORGANIZATION], cutoff=0.8):
        raise ValueError(
            'expected "organization" exactly (lower case, singular), or the s3:// URI or path of an accounts file'
        )
    if not value.endswith(".toml"):
        raise ValueError(
            'expected "organization", or an accounts file ending in .toml: s3://bucket/accounts.toml or a local path'
        )
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        if not _BUCKET.fullmatch(bucket) or not key.removesuffix(".toml") or key.startswith("/"):
            raise ValueError("expected an accounts file's S3 URI such as s3://my-lakecircle-bucket/accounts.toml")
    elif "://" in value:
        raise ValueError("expected an s3:// URI or a local path of an accounts file")
    return value


_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")

STORAGE_CLASS_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A name ``LCC_STORAGE_CLASSES`` takes: 1 to 64 letters, digits, ``_``, ``.`` and ``-``, as S3's
own classes and MinIO's tiers and Ceph's placement targets are written."""


def parse_storage_classes(value: object) -> object:
    """``LCC_STORAGE_CLASSES``: names separated by commas (``WARM,COLD``) or a JSON list of them
    (``["WARM", "COLD"]``), each a transition target the server has beside S3's own. The
    names are checked as names only; S3's own classes need no entry and are refused in it, in
    any case, so their rules of days and order are never lost to a name given twice."""
    if not isinstance(value, str):
        return value  # a tuple given as an override; pydantic checks its type
    text = value.strip()
    if text.startswith(("[", "{", '"')):  # JSON, meant as a list or not
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'expected a JSON list of names such as ["WARM", "COLD"] ({exc.msg})') from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError('expected a JSON list of names such as ["WARM", "COLD"]')
    else:
        names = text.split(",")
    names = [n.strip() for n in names]
    problems = []
    if not all(names):
        problems.append("a name is empty (two commas in a row, or one at an end)")
    bad = [str(i) for i, n in enumerate(names, 1) if n and not STORAGE_CLASS_NAME.fullmatch(n)]
    if bad:  # named by place, not shown: a value pasted by mistake may be a secret
        which = ", ".join(bad[:10]) + (", ..." if len(bad) > 10 else "")
        problems.append(
            f"name(s) {which} of the {len(names):,} are not storage class names:"
            " each is 1 to 64 letters, digits, '_', '.' or '-'"
        )
    own = [n for n in names if n in STORAGE_CLASSES]
    if own:
        problems.append(f"{', '.join(own)} is S3's own (its rules apply); list only the server's other classes")
    cased = {n: c for n in names for c in STORAGE_CLASSES if n != c and n.upper() == c}
    if cased:
        problems.append(
            f"{', '.join(f'{n} is {c}' for n, c in cased.items())} in other case, which S3 refuses and a reader"
            " takes for S3's own; write S3's class in upper case in the definitions (its rules apply)"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(dict.fromkeys(names))


StorageClasses = Annotated[tuple[str, ...], NoDecode, BeforeValidator(parse_storage_classes)]
"""``LCC_STORAGE_CLASSES``'s type: read by :func:`parse_storage_classes`, not as JSON by pydantic-settings."""


PREVIEW_CHARACTERS: Final = 3
"""How much of a refused value an error shows: enough to recognise a typo, too little to leak a secret."""

NEVER_SHOWN: Final = frozenset({"action_params"})
"""Settings whose value no message shows, not even a preview: JSON is where a token gets pasted."""


def preview(value: object) -> str:
    """A refused value as an error shows it: its first few characters and its length.

    ``"APP…" (5 characters)``; a value no longer than the preview is shown whole. Characters
    that are not printable are shown as ``?`` so that a value cannot break a log line.
    """
    text = str(value)
    shown = "".join(c if c.isprintable() else "?" for c in text[:PREVIEW_CHARACTERS])
    if len(text) <= PREVIEW_CHARACTERS:
        return f'"{shown}"'
    return f'"{shown}…" ({len(text)} characters)'
