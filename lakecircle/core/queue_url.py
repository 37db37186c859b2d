"""``LCC_EVENTS_QUEUE``: an SQS queue's URL, checked and read into its account, name and region.

SQS names a queue by its URL (``https://sqs.eu-west-1.amazonaws.com/123456789012/name``),
and a request must go to the queue's own region: the region is read from the URL's host
where it holds one (AWS's endpoints, FIPS and VPC endpoints) and is None otherwise (a
local server such as moto's or LocalStack's, where the SDK's default region is used). A
queue's ARN or bare name is refused with the form to write instead; a URL with a user or
password in it is refused without being shown (it may hold a secret).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

EXAMPLE: Final = "https://sqs.eu-west-1.amazonaws.com/123456789012/lakecircle-events"

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo")
_REGION_IN_HOST: Final = re.compile(r"(?:^|\.)([a-z]{2}(?:-[a-z]+)+-\d+)\.")
_LEGACY_US_EAST_1: Final = "queue.amazonaws.com"


@dataclass(frozen=True, slots=True)
class QueueUrl:
    """A queue's URL and what it says: the account that owns the queue, its name, its region."""

    url: str
    account: str
    name: str
    region: str | None


def queue_url_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a queue's URL, as a sentence (None: nothing)."""
    try:
        parse_queue_url(text)
    except ValueError as exc:
        return str(exc)
    return None


def parse_queue_url(text: str) -> QueueUrl:
    """``text`` read as a queue's URL; raises ValueError saying what to write instead."""
    if text.startswith("arn:"):
        raise ValueError(
            f"is a queue's ARN; give the queue's URL, such as {EXAMPLE} (the ARN's region, account and name)"
        )
    if "://" not in text:
        raise ValueError(f"expected the queue's URL, such as {EXAMPLE} (`aws sqs get-queue-url` prints it)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"is not a URL; expected the queue's URL, such as {EXAMPLE}") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("holds a user name or password; give the queue's URL alone (credentials are the AWS SDK's)")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"expected an https:// URL with a host, such as {EXAMPLE}")
    if parts.query or parts.fragment:
        raise ValueError(f"has a query or fragment; expected the queue's URL alone, such as {EXAMPLE}")
    account, _, name = parts.path.removeprefix("/").partition("/")
    if not re.fullmatch(r"\d{12}", account) or not _NAME.fullmatch(name):
        raise ValueError(
            "expected the path /<12-digit account>/<queue name> (1 to 80 letters, digits, '-' and '_',"
            f" or a .fifo name), such as {EXAMPLE}"
        )
    del port  # read only to check it is a number
    return QueueUrl(text, account, name, _region(parts.hostname))


def _region(host: str) -> str | None:
    """The region a queue's host names, if it names one."""
    if host == _LEGACY_US_EAST_1:
        return "us-east-1"
    match = _REGION_IN_HOST.search(host)
    return match.group(1) if match else None
