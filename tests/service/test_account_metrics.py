"""Metrics in both modes: a single-account exposition byte for byte as before, and a hub's
series per account, by the contract of :mod:`tests.deploy_common`.

The golden file ``single_account.prom`` is what :class:`Metrics` exposed after
:func:`feed` before multi-account mode existed; a deliberate change to single-account
series (a new metric, a new known label value) rewrites it on purpose, never by accident.
"""

from __future__ import annotations

from pathlib import Path

from lakecircle import errors
from lakecircle.adapters.throttle import ThrottleGate
from lakecircle.core.report import BucketResult, BucketState
from lakecircle.service.metrics import Metrics
from tests.builders import rule
from tests.service.test_metrics import NOW, changed, definitions, report

GOLDEN = Path(__file__).with_name("single_account.prom")


def feed(target: Metrics) -> None:
    """Every way of feeding the metrics, once or more, with values that show in the exposition."""
    a, b = rule("a"), rule("b")
    results = (
        changed("written", live=(a, b), desired=(rule("a", days=60), rule("c"))),
        BucketResult("in-sync", BucketState.IN_SYNC, dropped=("Filter.ObjectSizeGreaterThan",)),
        BucketResult("gone", BucketState.MISSING, error="defined but not in the account"),
        BucketResult("r1", BucketState.FAILED, error="AccessDenied", stage="read"),
        BucketResult("other", BucketState.CHANGED, external=True),
        BucketResult("held", BucketState.DRIFTED, guard="blast_radius"),
    )
    target.observe_cycle(report(*results, trigger="startup", duration=0.7), now=NOW - 600)
    target.observe_cycle(report(BucketResult("in-sync", BucketState.IN_SYNC), trigger="resync"), now=NOW - 300)
    target.observe_cycle(report(trigger="plan", duration=45.0), now=NOW - 250)
    unreadable = definitions(3, errors=1, unreadable=("broken.toml",))
    last = (*results[1:3], BucketResult("slow", BucketState.DIVERGING, dropped=("NewerNoncurrentVersions",)))
    target.observe_cycle(report(*last, defs=unreadable, guards=("partial_definitions",), trigger="poll"), now=NOW - 200)
    target.observe_cycle(report(fatal="could not list the account's buckets: SlowDown", defs=definitions(3)), now=NOW)
    target.observe_cycle(report(fatal="could not list the definitions", trigger="signal", duration=0.1), now=NOW)
    target.observe_cycle_error("resync", duration=2.0)
    target.observe_cycle_error("poll")
    op = "GetBucketLifecycleConfiguration"
    for error in (
        None,
        errors.Throttled("x", operation=op),
        errors.ServerError("x", operation=op),
        errors.ConnectionFailed("x", operation=op),
        errors.AccessDenied("x", operation=op),
        errors.NotFound("x", operation=op),
        errors.InvalidRequest("x", operation=op),
        errors.MalformedResponse("x", operation=op),
    ):
        target.observe_request(op, error, 0.03)
    target.observe_retry(op, errors.Throttled("x", operation=op), 0.5)
    target.on_request("ListBuckets", "success", 0.2)
    target.on_request("ListBuckets", "success", 7.0)
    target.on_retry("ListBuckets", "connection", 1.0)
    target.watch_gate(ThrottleGate(max_requests_per_second=40.0))


def single_account_exposition() -> bytes:
    metrics = Metrics()
    feed(metrics)
    metrics.observe_poll_failure()
    metrics.set_info("0.1.0", "SYNC", "123456789012")
    return metrics.render()


def test_a_single_account_exposition_is_byte_for_byte_what_it_was_before_many_accounts() -> None:
    assert single_account_exposition().decode() == GOLDEN.read_text(encoding="utf-8")
