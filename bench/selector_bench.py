"""Selector matching benchmark: 100,000 bucket names against 500 selectors, compiled once.

Not a test: it prints the time to match every name (the fastest of three runs), the
time to compile the selectors, and how many (name, selector) matches were found, and
whether matching stays under issue 15's target of 1 s on this machine. The workload is
seeded, so runs compare.

    python bench/selector_bench.py [--buckets N] [--selectors N] [--repeat N] [--json]

``bench/run.py`` runs it as its ``selectors`` section.

Bucket names are built the way organisations name buckets (team, environment, purpose,
region, a number; some with dots or an account suffix). Selectors are a seeded mix of
what platform teams write: prefixes (``payments-*``), suffixes (``*-logs``), infixes
(``*-tmp-*``), ``?`` and ``[seq]``/``[!seq]`` patterns, a few exact names and a few
``"*"`` baselines, some with ``BucketExclude``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.selectors import Matcher, Ownership, Selector

TARGET_SECONDS = 1.0
SEED = 15
PRODUCTS = (
    "payments",
    "search",
    "identity",
    "ads",
    "ml",
    "data",
    "platform",
    "growth",
    "risk",
    "media",
    "infra",
    "billing",
    "ledger",
    "mobile",
    "web",
    "support",
    "sec",
    "analytics",
    "catalog",
    "orders",
    "checkout",
    "maps",
    "video",
    "chat",
    "mail",
    "crm",
    "hr",
    "fraud",
    "pricing",
    "inventory",
)
TEAMS = tuple(f"{product}{part}" for product in PRODUCTS for part in ("", "-api", "-etl", "-web", "-core", "-ops"))
"""180 teams: a fleet of 500 selectors names many families, not the same few again and again."""
ENVS = ("prod", "staging", "dev", "qa", "sandbox")
PURPOSES = (
    "logs",
    "raw",
    "curated",
    "exports",
    "backup",
    "artifacts",
    "tmp",
    "media",
    "events",
    "snapshots",
    "audit",
    "cache",
    "reports",
    "models",
    "archive",
)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")


def bucket_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct valid bucket names in a few organisations' styles."""
    names: dict[str, None] = {}
    while len(names) < count:
        team, env, purpose = rng.choice(TEAMS), rng.choice(ENVS), rng.choice(PURPOSES)
        style = rng.randrange(5)
        if style == 0:
            name = f"{team}-{env}-{purpose}-{rng.randrange(10_000)}"
        elif style == 1:
            name = f"{env}-{team}-{purpose}-{rng.choice(REGIONS)}-{rng.randrange(1000)}"
        elif style == 2:
            name = f"{team}.{purpose}.{env}.{rng.randrange(100_000)}"
        elif style == 3:
            name = f"acme-{team}-{purpose}-{rng.randrange(10**12):012d}"
        else:
            name = f"{purpose}-{team}-{rng.randrange(36**4):x}-{env}"
        names[name[:63]] = None
    return list(names)


def _pattern(rng: random.Random) -> str:
    team, env, purpose = rng.choice(TEAMS), rng.choice(ENVS), rng.choice(PURPOSES)
    kind = rng.randrange(100)
    if kind < 45:  # prefix
        return rng.choice((f"{team}-*", f"{team}-{env}-*", f"{env}-{team}-*", f"acme-{team}-{purpose}-*", f"{team}.*"))
    if kind < 70:  # suffix
        return rng.choice((f"*-{purpose}", f"*-{team}-{env}", f"*.{env}.[0-9]*", f"*-{purpose}-{rng.randrange(10)}"))
    if kind < 78:  # infix
        return rng.choice((f"*-{purpose}-*", f"*{rng.choice(PRODUCTS)}*", f"*.{purpose}.*"))
    if kind < 97:  # ? and sets
        return rng.choice(
            (
                f"{team}-{env}-{purpose}-?",
                f"{team}-[a-m]*",
                f"[!a]*-{purpose}",
                f"{purpose}-{team}-????-{env}",
                f"*-{purpose}-[0-9][0-9]",
                f"{env}-*-[!x]*",
            )
        )
    return f"{team}-{env}-{purpose}-{rng.randrange(10_000)}"  # an exact name as a pattern


def selectors(rng: random.Random, count: int, everything: int = 3) -> list[Selector]:
    """``count`` selectors: ``everything`` of them ``"*"`` (a baseline, one with an
    exclusion), the rest 1-3 patterns each, one in ten with a ``BucketExclude``."""
    made = []
    for index in range(count):
        if index < everything:
            match: tuple[str, ...] = ("*",)
            exclude: tuple[str, ...] = ("*-tmp-*",) if index == 0 else ()
        else:
            match = tuple(_pattern(rng) for _ in range(rng.choice((1, 1, 2, 3))))
            exclude = (_pattern(rng),) if rng.random() < 0.1 else ()
        made.append(
            Selector(
                file=f"fleet/{index:03d}.toml",
                where="",
                match=match,
                exclude=exclude,
                tags=(),
                ownership=Ownership.SHARED,
                config=LifecycleConfig(),
            )
        )
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buckets", type=int, default=100_000)
    parser.add_argument("--selectors", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object (for bench/run.py)")
    args = parser.parse_args()

    rng = random.Random(SEED)
    names = bucket_names(rng, args.buckets)
    chosen = selectors(rng, args.selectors)

    compile_s = match_s = float("inf")
    found = 0
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        matcher = Matcher(chosen)
        t1 = time.perf_counter()
        found = sum(len(matcher.match(name)) for name in names)
        t2 = time.perf_counter()
        compile_s, match_s = min(compile_s, t1 - t0), min(match_s, t2 - t1)

    figures = {
        "buckets": len(names),
        "selectors": len(chosen),
        "patterns": sum(len(s.match) for s in chosen),
        "compile_s": compile_s,
        "match_s": match_s,
        "matches": found,
        "target_s": TARGET_SECONDS,
        "repeat": max(1, args.repeat),
    }
    if args.json:
        print(json.dumps(figures))
        return 0 if match_s < TARGET_SECONDS else 1
    print(f"LakeCircle selector matching: {len(names):,} bucket names x {len(chosen)} selectors")
    print(f"  ({figures['patterns']:,} patterns; fastest of {figures['repeat']} runs)")
    print(f"  compile     {compile_s:9.3f} s")
    print(f"  match       {match_s:9.3f} s  ({match_s / len(names) * 1e6:.1f} µs a name)")
    print(f"  matches     {found:,} (name, selector) pairs, {found / len(names):.1f} a name")
    print(f"  target < {TARGET_SECONDS:g} s: {'PASS' if match_s < TARGET_SECONDS else 'FAIL'}")
    print(f"  (python {sys.version.split()[0]}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    return 0 if match_s < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
