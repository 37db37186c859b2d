"""Planning benchmark: parse, validate and plan 10,000 buckets of 10 rules each from TOML text.

Not a test: it prints a table of seconds per phase and whether the whole stays under the
issue's target of 3 s on this machine. The workload is seeded, so runs compare.

    python bench/plan_bench.py [--buckets N] [--rules N] [--profile] [--json]

``bench/run.py`` runs it as part (6) of the full benchmark; its workload generator and
drift (``make_definitions``, ``drift_rules``) also feed the fake S3 endpoint there.

Definitions are one file per bucket, written the way people write them (inline tables,
every kind of filter and action, dates as TOML dates and ISO strings). The live side is
what S3 would answer for each bucket (boto3's shape: ``Filter {}``, tz-aware datetimes,
TransitionDefaultMinimumObjectSize), read through ``config_from_response``; about one
bucket in ten differs from its definition (a rule changed, added or removed, or the
minimum object size).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import pstats
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakecircle.core.definitions import build_definitions
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.parse import parse_file
from lakecircle.core.plan import BucketPlan, plan_bucket
from lakecircle.core.toml_reader import READER
from lakecircle.engine.loader import collector_paused

TARGET_SECONDS = 3.0
SEED = 7
TDMOS = ("all_storage_classes_128K", "varies_by_storage_class")


def _rule_toml(rng: random.Random, index: int) -> str:
    """One ``[[LifecycleConfiguration.Rules]]`` table; valid, with a realistic mix of features."""
    lines = ["[[LifecycleConfiguration.Rules]]", f'ID = "rule-{index:02d}-{rng.randrange(10**6)}"']
    lines.append(f'Status = "{"Enabled" if rng.random() < 0.9 else "Disabled"}"')
    prefix = f"data/{rng.choice(['logs', 'raw', 'tmp', 'exports', 'media'])}/{index}/"
    kind = rng.randrange(8)
    tag_or_size = False
    if kind == 0:
        lines.append("Filter = {}")
    elif kind == 1:
        lines.append(f'Filter = {{ Tag = {{ Key = "team", Value = "t{rng.randrange(50)}" }} }}')
        tag_or_size = True
    elif kind == 2:
        lines.append(f"Filter = {{ ObjectSizeGreaterThan = {rng.randrange(1, 10**9)} }}")
        tag_or_size = True
    elif kind == 3:
        lines.append(
            f'Filter = {{ And = {{ Prefix = "{prefix}", Tags = [{{ Key = "env", Value = "prod" }},'
            f' {{ Key = "tier", Value = "t{rng.randrange(3)}" }}],'
            f" ObjectSizeLessThan = {rng.randrange(2, 10**10)} }} }}"
        )
        tag_or_size = True
    else:
        lines.append(f'Filter = {{ Prefix = "{prefix}" }}')

    shape = rng.randrange(6)
    if shape == 0:
        lines.append(
            'Transitions = [ { Days = 30, StorageClass = "STANDARD_IA" }, { Days = 90, StorageClass = "GLACIER" },'
            ' { Days = 180, StorageClass = "DEEP_ARCHIVE" } ]'
        )
        lines.append(f"Expiration = {{ Days = {rng.randrange(181, 3650)} }}")
    elif shape == 1:
        year = rng.randrange(2026, 2035)
        lines.append(f'Transitions = [ {{ Date = {year}-01-01, StorageClass = "GLACIER_IR" }} ]')
        lines.append(f'Expiration = {{ Date = "{year + 3}-06-01T00:00:00Z" }}')
    elif shape == 2:
        lines.append(
            'NoncurrentVersionTransitions = [ { NoncurrentDays = 30, StorageClass = "STANDARD_IA" },'
            f' {{ NoncurrentDays = 60, StorageClass = "GLACIER", NewerNoncurrentVersions = {rng.randrange(1, 10)} }} ]'
        )
        lines.append("NoncurrentVersionExpiration = { NoncurrentDays = 365, NewerNoncurrentVersions = 3 }")
    elif shape == 3 and not tag_or_size:
        lines.append("Expiration = { ExpiredObjectDeleteMarker = true }")
        lines.append(f"AbortIncompleteMultipartUpload = {{ DaysAfterInitiation = {rng.randrange(1, 30)} }}")
    elif shape == 4:
        lines.append('Transitions = [ { Days = 0, StorageClass = "INTELLIGENT_TIERING" } ]')
    else:
        lines.append(f"Expiration = {{ Days = {rng.randrange(1, 400)} }}")
    return "\n".join(lines)


def make_definitions(rng: random.Random, buckets: int, rules: int) -> dict[str, bytes]:
    files = {}
    for b in range(buckets):
        head = [f'BucketName = "bench-bucket-{b:05d}"']
        if rng.random() < 0.3:
            head.append(f'TransitionDefaultMinimumObjectSize = "{rng.choice(TDMOS)}"')
        body = [_rule_toml(rng, r) for r in range(rules)]
        files[f"definition/bench-{b:05d}.toml"] = ("\n".join(head) + "\n\n" + "\n\n".join(body) + "\n").encode()
    return files


def _as_s3_answer(config: LifecycleConfig, tdmos: str) -> dict[str, Any]:
    """What GetBucketLifecycleConfiguration returns for a bucket holding ``config``."""
    rules = config_to_request(config)["LifecycleConfiguration"]["Rules"]
    return {"Rules": rules, "TransitionDefaultMinimumObjectSize": tdmos, "ResponseMetadata": {"HTTPStatusCode": 200}}


def drift_rules(rng: random.Random, rules: list[Rule], tdmos: str, *, tdmos_defined: bool) -> tuple[list[Rule], str]:
    """One kind of drift, as a console user or another tool makes it: a rule's status
    flipped, the last rule removed, a rule added, or the minimum object size changed.

    Returns new rules and minimum object size that always differ from the given ones in
    a way a plan sees (``tdmos_defined``: the definition names a minimum object size).
    """
    rules = list(rules)
    match rng.randrange(4):
        case 0:
            rules[0] = rules[0].model_copy(update={"status": "Disabled" if rules[0].status == "Enabled" else "Enabled"})
        case 1:
            rules.pop()
        case 2:
            rules.append(rules[0].model_copy(update={"id": "hand-made-in-console"}))
        case _:
            tdmos = TDMOS[1] if tdmos == TDMOS[0] else TDMOS[0]
            if not tdmos_defined:
                rules.pop()  # a silent definition keeps any live value: drift elsewhere
    return rules, tdmos


def make_live(rng: random.Random, desired: dict[str, LifecycleConfig]) -> tuple[dict[str, LifecycleConfig], int]:
    live: dict[str, LifecycleConfig] = {}
    drifted = 0
    for name, config in desired.items():
        rules = list(config.rules)
        rng.shuffle(rules)  # S3 and other servers may answer in their own order
        tdmos = config.transition_default_minimum_object_size or TDMOS[0]
        if rng.random() < 0.1:
            drifted += 1
            defined = config.transition_default_minimum_object_size is not None
            rules, tdmos = drift_rules(rng, rules, tdmos, tdmos_defined=defined)
        live[name] = config_from_response(_as_s3_answer(LifecycleConfig(tuple(rules)), tdmos))
    return live, drifted


def _top(profiler: cProfile.Profile, title: str, lines: int) -> None:
    print(f"--- profile: {title} (cumulative, then own time) ---")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buckets", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions per phase")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object (for bench/run.py)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every phase N times and report each phase's fastest run (for a busy machine)",
    )
    parser.add_argument(
        "--gc-on",
        action="store_true",
        help="keep the cyclic garbage collector running while parsing (the loader pauses it)",
    )
    args = parser.parse_args()

    rng = random.Random(SEED)
    files = make_definitions(rng, args.buckets, args.rules)
    megabytes = sum(len(d) for d in files.values()) / 1e6
    profilers = {phase: cProfile.Profile() for phase in ("parse", "merge + validate", "plan")} if args.profile else {}

    def profiled(phase: str) -> contextlib.AbstractContextManager[Any]:
        profiler = profilers.get(phase)
        return profiler if profiler is not None else contextlib.nullcontext()

    parse_s = validate_s = plan_s = toml_s = float("inf")
    live: dict[str, LifecycleConfig] = {}
    drifted = rules_total = 0
    for run in range(max(1, args.repeat)):
        pause = contextlib.nullcontext() if args.gc_on else collector_paused()
        with pause:
            with profiled("parse"):
                t0 = time.perf_counter()
                parsed = [parse_file(name, data) for name, data in files.items()]
                t1 = time.perf_counter()
            with profiled("merge + validate"):
                definitions = build_definitions(parsed)
                t2 = time.perf_counter()

        assert definitions.error_count == 0, [str(p) for p in definitions.problems[:5]]
        assert len(definitions.buckets) == args.buckets
        desired = {name: b.config for name, b in definitions.buckets.items()}
        if run == 0:
            rules_total = sum(len(c.rules) for c in desired.values())
            live, drifted = make_live(rng, desired)

        with profiled("plan"):
            t3 = time.perf_counter()
            plans: list[BucketPlan] = [plan_bucket(name, desired[name], live[name]) for name in desired]
            t4 = time.perf_counter()

        actions = Counter(p.action.value for p in plans)
        assert actions["put"] == drifted, (actions, drifted)
        parse_s, validate_s, plan_s = min(parse_s, t1 - t0), min(validate_s, t2 - t1), min(plan_s, t4 - t3)
        del parsed, definitions, desired, plans

    # Where parse time goes: the TOML reader alone (tomli, or tomllib without it), over the same texts.
    texts = [data.decode() for data in files.values()]
    for _ in range(max(1, args.repeat)):
        with collector_paused():
            t5 = time.perf_counter()
            for text in texts:
                READER.loads(text)
            toml_s = min(toml_s, time.perf_counter() - t5)

    total = parse_s + validate_s + plan_s
    if args.json:
        figures = {
            "buckets": args.buckets,
            "rules": args.rules,
            "megabytes": round(megabytes, 2),
            "parse_s": parse_s,
            "validate_s": validate_s,
            "plan_s": plan_s,
            "total_s": total,
            "toml_reader": READER.name,
            "toml_s": toml_s,
            "drifted": drifted,
            "target_s": TARGET_SECONDS,
            "repeat": max(1, args.repeat),
        }
        print(json.dumps(figures))
        return 0 if total < TARGET_SECONDS else 1
    print(f"LakeCircle planning benchmark: {args.buckets:,} buckets x {args.rules} rules")
    print(f"  ({len(files):,} files, {megabytes:.1f} MB of TOML, {rules_total:,} rules; {drifted:,} buckets drifted)")
    if args.repeat > 1:
        print(f"  (each phase's fastest of {args.repeat} runs)")
    print()
    print(f"  {'phase':<34}{'seconds':>9}")
    print(f"  {'-' * 34}{'-' * 9}")
    print(f"  {'parse (TOML -> model)':<34}{parse_s:>9.3f}")
    print(f"  {'merge + validate':<34}{validate_s:>9.3f}")
    print(f"  {'plan (plan_bucket x buckets)':<34}{plan_s:>9.3f}")
    print(f"  {'-' * 34}{'-' * 9}")
    print(f"  {'total':<34}{total:>9.3f}")
    print()
    reader = READER.name
    print(f"  of which {reader}.loads alone: {toml_s:.3f} s ({toml_s / parse_s:.0%} of parse), measured apart")
    print(
        f"  everything but {reader}: {total - toml_s:.3f} s; {reader} alone is"
        f" {toml_s / TARGET_SECONDS:.0%} of the {TARGET_SECONDS:g} s target"
    )
    if profilers:
        print(f"  (phases timed under the profiler, which slows them several times; {reader} alone is not)")
    collector = "collector running" if args.gc_on else "collector paused as in the loader"
    print(f"  plans: {dict(sorted(actions.items()))}; {collector}")
    print(f"  target < {TARGET_SECONDS:g} s: {'PASS' if total < TARGET_SECONDS else 'FAIL'}")
    print(f"  (python {sys.version.split()[0]}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    for phase, profiler in profilers.items():
        _top(profiler, phase, 25)
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
