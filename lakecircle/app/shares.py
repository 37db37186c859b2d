"""What one process shares among the member accounts of its hub (``LCC_ACCOUNTS``).

One service identity, from which every member account's role is assumed; one bound on
requests under way (``LCC_CONCURRENCY``), half of it at most for one account; and how many
accounts run their cycle at once. :func:`~lakecircle.app.wiring.open_hub` and the commands
of :mod:`lakecircle.app.accounts` take each of them once per process.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lakecircle.settings import Settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.roles import ServiceIdentity
    from lakecircle.adapters.slots import RequestSlots


def service_identity(settings: Settings, *, replica: str | None = None) -> ServiceIdentity:
    """The hub: the service's own identity, from which every member account's role is assumed.

    Its STS is ``LCC_AWS_REGION``'s (the SDK's endpoint settings apply); the RoleSessionName
    is ``lakecircle-<replica>``, the host name when no replica is named.
    """
    from lakecircle.adapters.s3.roles import ServiceIdentity, role_session_name

    settings.require("aws_region")
    assert settings.aws_region is not None  # noqa: S101 -- checked by require()
    return ServiceIdentity(region=settings.aws_region, session_name=role_session_name(replica))


def request_slots(settings: Settings) -> RequestSlots:
    """``LCC_CONCURRENCY`` requests under way across every member account, half of them at most for one."""
    from lakecircle.adapters.slots import RequestSlots

    return RequestSlots(settings.concurrency)


def accounts_at_once(settings: Settings) -> int:
    """How many member accounts run their cycle at once: one per four of ``LCC_CONCURRENCY``'s
    slots, at least two (four with the default 16).

    One account holds at most half of the slots (:func:`request_slots`), so fewer than two
    would leave half of the bound unused, and a long account would delay every other
    account's cycle. An account rarely keeps its whole share busy: its AssumeRole and
    identity check, each ListBuckets page (one request at a time) and a small account's few
    reads leave most of it idle, so more accounts run at once as the bound grows. More than
    that only adds accounts waiting for slots, with their clients open.
    """
    return max(2, math.ceil(settings.concurrency / 4))
