"""The ``million`` section's table and targets (bench/million.py measures them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RSS_TARGET_MB = 600
RATE_TOLERANCE = 0.05
CHANGE_TARGET = 20
EVENT_P99_TARGET = 2.0


def _cpu(step: Mapping[str, Any], reads: int) -> str:
    daemon, endpoint = step.get("daemon_cpu"), step.get("endpoint_cpu")
    if not reads or daemon is None or endpoint is None:
        return ""
    return f"; CPU µs a read: daemon {daemon / reads * 1e6:.0f}, endpoint {endpoint / reads * 1e6:.0f}"


def _f(value: float | None, form: str = "{:.2f}") -> str:
    return "-" if value is None else form.format(value)


def render(results: Mapping[str, Any], out: list[str]) -> list[tuple[str, str, bool | None]]:
    """The section's table into ``out``; its targets as (name, figure, ok)."""
    from bench.run import _table

    plan, fleet = results["plan"], results["fleet"]
    n, managed, interval = fleet["buckets"], fleet["managed"], plan["interval"]
    out.append(
        f"### 11. A million buckets: `lakecircle daemon` against {n:,} generated buckets ({managed:,} managed), "
        f"LCC_RESYNC_INTERVAL={interval} s, concurrency {plan['concurrency']}"
    )
    out.append("")
    out.extend(_table(["step", "seconds", "requests by operation", "figures"], _rows(results)))
    out.append("")
    out.append(
        "Requests as the endpoint counts them. Definition change: listing = ListObjectsV2 of the endpoint + "
        "ListBuckets; reads = the 10 buckets' reads and records read; writes = the 10 buckets'; records = "
        "PutObject of the endpoint; the target counts listing + GetObject + reads, with writes = 10 and "
        "other buckets' reads at most twice what the "
        f"steady window read in as long. Daemon exit {results.get('exit')}; load average after "
        f"{'/'.join(f'{v:.2f}' for v in results.get('load_average', ()))}."
    )
    out.append("")
    return _targets(results)


def _rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row a step: the start-up pass, the steady window, the definition change, the events."""
    from bench.run import _ops

    plan = results["plan"]
    startup = results.get("startup", {})
    steady = results.get("steady")
    change = results.get("change")
    events = results.get("events")
    rows = [
        [
            "start-up pass",
            f"{startup.get('seconds', 0):.0f}",
            _ops(startup.get("ops", {})),
            f"{startup.get('rate', 0):,.0f} reads/s"
            + ("" if startup.get("done") else " (NOT done)")
            + _cpu(startup, startup.get("ops", {}).get("GetBucketLifecycleConfiguration", 0)),
        ]
    ]
    if steady:
        rows.append(
            [
                "steady window",
                f"{steady['seconds']:.0f}",
                _ops(steady["ops"]),
                f"{steady['rate']:,.0f} reads/s (buckets/interval {steady['expected']:,.0f}); "
                f"lag {_f(steady['lag_before'])} → {_f(steady['lag_after'])} s; "
                f"RSS {_f(steady['rss_mb'], '{:.0f}')} MB"
                + _cpu(steady, steady["ops"].get("GetBucketLifecycleConfiguration", 0)),
            ]
        )
    if change:
        f = change["figures"]
        rows.append(
            [
                f"definition change ({change['buckets']} buckets)",
                f"{change['seconds']:.1f}",
                _ops(change["ops"]),
                f"listing {f['listing']}, GetObject {f['get_object']}, reads {f['reads']}, writes {f['writes']}, "
                f"records {f['records']}; other buckets read {change['background_reads']:,} "
                f"(background ~{change['background_expected']:,.0f})" + ("" if change["done"] else "; NOT all written"),
            ]
        )
    if events:
        rows.append(
            [
                "event to repair",
                "-",
                f"{events['samples']} samples",
                f"{events['repaired']} repaired, {len(events['missed'])} not within {plan['event_timeout']:g} s; "
                f"p50 {_f(events['p50'])} s, p99 {_f(events['p99'])} s, max {_f(events['max'])} s",
            ]
        )
    return rows


def _targets(results: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    n = results["fleet"]["buckets"]
    steady, change, events = results.get("steady"), results.get("change"), results.get("events")
    targets: list[tuple[str, str, bool | None]] = []
    peak = results.get("memory", {}).get("VmHWM")
    targets.append(
        (
            f"Daemon peak RSS at {n:,} buckets < {RSS_TARGET_MB} MB",
            f"{_f(peak, '{:.0f}')} MB",
            peak is not None and peak < RSS_TARGET_MB,
        )
    )
    if steady:
        ratio = steady["rate"] / steady["expected"] if steady["expected"] else 0.0
        targets.append(
            (
                f"Steady verification rate within {RATE_TOLERANCE:.0%} of buckets/interval",
                f"{steady['rate']:,.0f}/s against {steady['expected']:,.0f}/s ({ratio:.2f}x)",
                abs(ratio - 1) <= RATE_TOLERANCE,
            )
        )
    if change:
        f = change["figures"]
        excess = change["background_reads"] > 2 * change["background_expected"] + 10
        ok = change["done"] and change["counted"] < CHANGE_TARGET and f["writes"] == change["buckets"] and not excess
        targets.append(
            (
                f"A definition change affecting {change['buckets']} buckets < {CHANGE_TARGET} requests",
                f"{change['counted']} (+ {f['writes']} writes, {f['records']} records; "
                f"{change['background_reads']:,} other reads{', a pass' if excess else ''})",
                ok,
            )
        )
    if events:
        p99 = events["p99"]
        targets.append(
            (
                f"Event-to-repair p99 < {EVENT_P99_TARGET:g} s during background verification",
                f"{_f(p99)} s over {events['repaired']} of {events['samples']} samples",
                p99 is not None and p99 < EVENT_P99_TARGET and not events["missed"],
            )
        )
    return targets
