"""The one-shot path at the floor of its stack (issue 18): ``lakecircle sync`` and ``plan``
as users run them in CI, against bare aiobotocore loops, in the same run.

The setting is the issue's: N buckets of 5 rules (5,000 in the full run), 50 ms per
request at the endpoint, concurrency 32 (``LCC_CONCURRENCY``), 10% of the buckets drifted,
the definitions in a local directory (``--definitions DIR``, written there by the
endpoint). Every measurement is a whole process, timed from its start to its exit by
the orchestrator (interpreter, imports, account check and all: what a user waits for),
its CPU taken from the child's rusage:

- ``sync``: ``lakecircle sync --definitions DIR``; its floor (``floor-sync``) is a bare
  aiobotocore loop (``bench.clients floor --cold --puts FILE``) that GETs every bucket's
  lifecycle and PUTs the drifted ones back, as many PUTs as the sync makes;
- ``plan``: ``lakecircle plan --definitions DIR``; its floor (``floor-get``) the same loop
  without PUTs.

Each is run ``passes`` times, interleaved (sync, its floor, plan, its floor) from the
drifted state (the endpoint reset before each), and the pass of each that took the least
CPU is compared (the least disturbed by the VM, as the other sections do). Leases are
off (``LCC_LEASE_SECONDS=0``, one replica): a sync that holds the account's lease makes a
few more requests, measured apart (``sync-lease``, once).

Then, at the original comparison's size (2,000 buckets), ``lakecircle sync`` with the
definitions under the S3 prefix (as the original design read them) and with
``--definitions DIR``, against the original approach's wall time: the ``original``
section's when it ran in the same run, else the original approach run over
``original_measured`` buckets and scaled linearly (it is sequential).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.fake_s3 import ops_delta

if TYPE_CHECKING:
    from bench.run import Bench

SYNC_TARGET = 1.15
"""``lakecircle sync`` within this factor of the GET+PUT floor's wall time."""
PLAN_TARGET = 1.1
"""``lakecircle plan`` within this factor of the GET-only floor's wall time."""
ORIGINAL_TARGET = 30.0
"""``lakecircle sync`` at least this many times faster than the original approach."""
WRITES = ("PutBucketLifecycleConfiguration", "DeleteBucketLifecycle")


@dataclass(frozen=True)
class OneShotPlan:
    buckets: int = 5000
    concurrency: int = 32
    delay_ms: int = 50
    passes: int = 3
    original_buckets: int = 2000
    original_measured: int = 500
    """Buckets the original approach is run over when the ``original`` section did not run."""
    lease_pass: bool = True
    """One more sync with leases on (it waits out a lease's write timeout first: 30 s or more)."""


FULL = OneShotPlan()
QUICK = OneShotPlan(buckets=300, passes=2, original_buckets=300, original_measured=100)


def lakecircle_command() -> list[str]:
    """The ``lakecircle`` executable beside this interpreter (as installed), else the same entry point."""
    script = Path(sys.executable).parent / "lakecircle"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from lakecircle.app.launch import main; main()"]


def run_process(
    bench: Bench, label: str, command: Sequence[str], env: Mapping[str, str], ok_codes: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    """Run ``command`` as a whole process: wall from spawn to exit, its CPU (children's rusage),
    the endpoint's requests by operation in that time. Output goes to the logs directory."""
    from bench.run import log

    stem = bench.logs / label.replace(" ", "_").replace("/", "-")
    log(f"{label}: running")
    before = bench.server.counts()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stem.with_suffix(".out").open("w") as out, stem.with_suffix(".log").open("w") as err:
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603 -- our own executables
            list(command), cwd=bench_root(), env=dict(env), stdout=out, stderr=err, timeout=3600, check=False
        )
        wall = time.perf_counter() - started
    after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = bench.server.counts()
    if done.returncode not in ok_codes:
        raise RuntimeError(f"{label} exited {done.returncode}; see {stem}.log")
    log(f"{label}: {wall:.2f} s")
    cpu = (after_usage.ru_utime - usage.ru_utime) + (after_usage.ru_stime - usage.ru_stime)
    return {
        "name": label,
        "wall": wall,
        "cpu": cpu,
        "ops": ops_delta(before["ops"], after["ops"]),
        "exit": done.returncode,
    }


def bench_root() -> Path:
    return Path(__file__).resolve().parents[1]


def compile_modules() -> None:
    """Compile the measured Python modules (``lakecircle``, ``bench``) to bytecode before any is timed.

    An installed package has its bytecode: ``pip install`` writes it (the image's Dockerfile
    installs the wheel so), as it did for aiobotocore and every other dependency here. A
    source tree run in place has none, and with ``PYTHONDONTWRITEBYTECODE`` set never gets
    any: each process would compile LakeCircle's hundred modules again (about 0.25 s), and
    the floors the ``bench`` modules and the core LakeCircle modules they import. Both sides
    of every ratio start from bytecode, as a user's would."""
    import compileall

    for package in ("lakecircle", "bench"):
        compileall.compile_dir(str(bench_root() / package), quiet=1)


def measure(bench: Bench, plan: OneShotPlan) -> None:
    """The sync and plan passes against their floors, into ``bench.results['oneshot']``."""
    compile_modules()
    directory = Path(tempfile.mkdtemp(prefix="lakecircle-bench-definitions-"))
    bench.server.call("definitions", {"directory": str(directory)})
    drifted = bench.workload["drifted"]
    puts = directory.parent / f"{directory.name}-drifted.txt"
    puts.write_text("\n".join(drifted))
    env = {**bench.env, "LCC_CONCURRENCY": str(plan.concurrency), "LCC_LEASE_SECONDS": "0"}
    n = bench.workload["buckets"]
    lakecircle = lakecircle_command()
    floor = [sys.executable, "-m", "bench.clients", "floor", "--cold", "--buckets", str(n)]
    floor += ["--concurrency", str(plan.concurrency)]
    runs: dict[str, list[dict[str, Any]]] = {"sync": [], "floor-sync": [], "plan": [], "floor-get": []}
    commands = {
        "sync": [*lakecircle, "sync", "--definitions", str(directory)],
        "floor-sync": [*floor, "--puts", str(puts)],
        "plan": [*lakecircle, "plan", "--definitions", str(directory)],
        "floor-get": floor,
    }
    for index in range(plan.passes):
        for kind, command in commands.items():
            bench.reset(delay_ms=plan.delay_ms)
            runs[kind].append(run_process(bench, f"oneshot {kind} N={n} pass {index + 1}", command, env))
    if plan.lease_pass:
        bench.reset(delay_ms=plan.delay_ms)
        leased = {**env, "LCC_LEASE_SECONDS": "30"}
        runs["sync-lease"] = [run_process(bench, f"oneshot sync-lease N={n}", commands["sync"], leased)]
    bench.results.setdefault("oneshot", {}).update(
        {
            "buckets": n,
            "drifted": len(drifted),
            "concurrency": plan.concurrency,
            "delay_ms": plan.delay_ms,
            "runs": runs,
            "load_average": os.getloadavg(),
        }
    )


def measure_original(bench: Bench, plan: OneShotPlan) -> None:
    """``lakecircle sync`` at the original comparison's size, both ways of reading definitions."""
    compile_modules()
    directory = Path(tempfile.mkdtemp(prefix="lakecircle-bench-definitions-"))
    bench.server.call("definitions", {"directory": str(directory)})
    env = {**bench.env, "LCC_CONCURRENCY": str(plan.concurrency), "LCC_LEASE_SECONDS": "0"}
    n = bench.workload["buckets"]
    entry: dict[str, Any] = {"buckets": n, "drifted": len(bench.workload["drifted"]), "runs": {}}
    for kind, extra in (("sync-s3", []), ("sync-local", ["--definitions", str(directory)])):
        passes = []
        for index in range(max(1, plan.passes - 1)):
            bench.reset(delay_ms=plan.delay_ms)
            passes.append(
                run_process(
                    bench, f"oneshot {kind} N={n} pass {index + 1}", [*lakecircle_command(), "sync", *extra], env
                )
            )
        entry["runs"][kind] = passes
    original = bench.results.get("original")
    if original is not None and original.get("target_buckets") == n:
        entry["original"] = {
            "wall": original["original"]["cycles"][0]["wall"],
            "measured": original["original_measured"],
        }
    else:
        bench.load(plan.original_measured)
        bench.reset(delay_ms=plan.delay_ms)
        result = bench.child(f"oneshot: original approach N={plan.original_measured}", "original")
        entry["original"] = {"wall": result["cycles"][0]["wall"], "measured": plan.original_measured}
    bench.results.setdefault("oneshot", {})["original"] = entry


def _best(passes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return min(passes, key=lambda p: p["cpu"])


def _short(ops: Mapping[str, int]) -> str:
    from bench.run import _ops

    return _ops(ops)


def render(results: Mapping[str, Any], out: list[str]) -> list[tuple[str, str, bool | None]]:
    """The section's tables into ``out``; its targets as (name, figure, ok)."""
    targets: list[tuple[str, str, bool | None]] = []
    if "runs" in results:
        n, delay, conc = results["buckets"], results["delay_ms"], results["concurrency"]
        out.append(
            f"### 10. The one-shot path: `lakecircle sync` and `plan --definitions DIR` against bare aiobotocore, "
            f"{n:,} buckets, {delay} ms, concurrency {conc}"
        )
        out.append("")
        rows = []
        for kind, passes in results["runs"].items():
            for p in passes:
                writes = sum(p["ops"].get(op, 0) for op in WRITES)
                rows.append(
                    [
                        kind,
                        p["name"].rsplit(" ", 2)[-1] if "pass" in p["name"] else "-",
                        f"{p['wall']:.2f}",
                        f"{p['cpu']:.2f}",
                        _short(p["ops"]),
                        f"{writes:,}",
                        str(p["exit"]),
                    ]
                )
        out.extend(_table(["run", "pass", "wall s", "CPU s", "requests by operation", "bucket writes", "exit"], rows))
        out.append("")
        load = results.get("load_average")
        out.append(
            "Each a whole process (start to exit). floor-sync: GET every bucket, PUT the drifted ones back; "
            "floor-get: GETs only. Ratios compare the pass of each that took the least CPU. "
            f"Leases off but for sync-lease. Load average after: {'/'.join(f'{v:.2f}' for v in load) if load else '?'}."
        )
        out.append("")
        runs = results["runs"]
        for kind, floor, target in (("sync", "floor-sync", SYNC_TARGET), ("plan", "floor-get", PLAN_TARGET)):
            mine, base = _best(runs[kind]), _best(runs[floor])
            ratio = mine["wall"] / base["wall"]
            drifted = results["drifted"]
            writes = sum(mine["ops"].get(op, 0) for op in WRITES)
            ok = ratio <= target and (writes == (drifted if kind == "sync" else 0)) and mine["exit"] == 0
            every = ", ".join(f"{p['wall']:.2f}" for p in runs[kind])
            floors = ", ".join(f"{p['wall']:.2f}" for p in runs[floor])
            targets.append(
                (
                    f"One-shot `{kind}` within {target}x of the {floor} floor ({n:,} buckets, {delay} ms, {conc})",
                    f"{mine['wall']:.2f} / {base['wall']:.2f} s = {ratio:.2f}x ({kind}: {every}; floor: {floors})",
                    ok,
                )
            )
    original = results.get("original")
    if original:
        targets.extend(_render_original(original, out))
    return targets


def _render_original(entry: Mapping[str, Any], out: list[str]) -> list[tuple[str, str, bool | None]]:
    n = entry["buckets"]
    orig = entry["original"]
    scale = n / orig["measured"]
    orig_wall = orig["wall"] * scale
    note = "" if scale == 1 else f" (measured over {orig['measured']:,}, x{scale:g})"
    out.append(f"### 10b. `lakecircle sync` against the original approach, {n:,} buckets, 50 ms")
    out.append("")
    rows = [["original approach", f"{orig_wall:.1f}{note}", "-", "1x"]]
    targets = []
    for kind, passes in entry["runs"].items():
        best = _best(passes)
        rows.append([kind, f"{best['wall']:.2f}", _short(best["ops"]), f"{orig_wall / best['wall']:.1f}x"])
        targets.append(
            (
                f"`lakecircle sync` ({kind}) ≥ {ORIGINAL_TARGET:g}x faster than the original at 50 ms, {n:,} buckets",
                f"{orig_wall / best['wall']:.1f}x ({best['wall']:.2f} s against {orig_wall:.1f} s)",
                orig_wall / best["wall"] >= ORIGINAL_TARGET,
            )
        )
    out.extend(_table(["client", "wall s", "requests by operation", "speed-up"], rows))
    out.append("")
    return targets


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    from bench.run import _table as table

    return table(header, rows)
