"""Targeted reconcile benchmark: which of a million listed buckets a definition change affects.

Not a test: it prints, for each kind of change, the time :func:`lakecircle.engine.targets.affected`
takes over the names (the fastest of three runs) and how many buckets it found, and whether
each stays under issue 18's bound of 1 s. The names are selector_bench's (seeded, so runs
compare); the definitions are 500 selectors of that benchmark's mix and 1,000 exact
``BucketName`` files, loaded as the daemon's loader keeps them (in brief).

    python bench/targets_bench.py [--buckets N] [--repeat N] [--json]

The changes: one exact file's rule (looked up, never scanned); a selector's pattern
widened (``payments-prod-*`` to ``payments-*``); a selector's pattern moved to a suffix
(``*-logs-7*``); a tag selector's tags changed, with every matched bucket's tags unknown.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.selector_bench import bucket_names
from lakecircle.core.definitions import Definitions, FileBrief, definitions_from_briefs
from lakecircle.core.parse import parse_file
from lakecircle.engine.targets import affected

TARGET_SECONDS = 1.0
SEED = 18
RULE = '{ ID = "r", Status = "Enabled", Filter = {}, Expiration = { Days = %d } }'


def _selector(match: str, days: int, tags: str = "") -> bytes:
    rules = f"LifecycleConfiguration = {{ Rules = [{RULE % days}] }}\n"
    return f"BucketMatch = [{json.dumps(match)}]\n{tags}{rules}".encode()


def _exact(name: str, days: int) -> bytes:
    return f"BucketName = {json.dumps(name)}\nLifecycleConfiguration = {{ Rules = [{RULE % days}] }}\n".encode()


def definitions(files: dict[str, bytes]) -> Definitions:
    return definitions_from_briefs(FileBrief.of(parse_file(k, v), v, k) for k, v in sorted(files.items()))


def base_files(names: list[str], rng: random.Random) -> dict[str, bytes]:
    files = {f"exact/{name}.toml": _exact(name, 30) for name in rng.sample(names, 1_000)}
    families = sorted({name.rsplit("-", 1)[0] for name in names[:5_000]})
    for index, family in enumerate(rng.sample(families, min(500, len(families)))):
        files[f"fleet/{index:03}.toml"] = _selector(f"{family}-*", 7)
    files["fleet/widen.toml"] = _selector("payments-prod-*", 7)
    files["fleet/suffix.toml"] = _selector("*-logs-1*", 7)
    files["fleet/tagged.toml"] = _selector("search-*", 7, 'BucketTags = { class = "a" }\n')
    return files


def timed(run: Callable[[], set[str] | None], repeat: int) -> tuple[float, set[str] | None]:
    best, found = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        found = run()
        best = min(best, time.perf_counter() - start)
    return best, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(SEED)
    names = bucket_names(rng, args.buckets)
    listed = frozenset(names)
    files = base_files(names, rng)
    old = definitions(files)
    one_exact = next(k for k in files if k.startswith("exact/"))
    changes = {
        "one BucketName file's rule": {one_exact: files[one_exact].replace(b"Days = 30", b"Days = 31")},
        "a pattern widened": {"fleet/widen.toml": _selector("payments-*", 7)},
        "a suffix pattern changed": {"fleet/suffix.toml": _selector("*-logs-7*", 7)},
        "a tag selector's tags (tags unknown)": {
            "fleet/tagged.toml": _selector("search-*", 7, 'BucketTags = { class = "b" }\n')
        },
    }
    results = []
    for label, change in changes.items():
        new = definitions(files | change)
        seconds, found = timed(lambda new=new: affected(old, new, listed), args.repeat)  # type: ignore[misc]
        count = None if found is None else len(found)
        results.append({"change": label, "seconds": round(seconds, 4), "affected": count})
    ok = all(r["seconds"] < TARGET_SECONDS for r in results)  # type: ignore[operator]
    if args.json:
        print(json.dumps({"buckets": len(names), "results": results, "target_seconds": TARGET_SECONDS, "ok": ok}))
    else:
        for r in results:
            verdict = "PASS" if r["seconds"] < TARGET_SECONDS else "FAIL"  # type: ignore[operator]
            print(f"{r['change']:<40} {r['seconds']:>8.3f} s  affected {r['affected']!s:>8}  {verdict}")
        print(f"{len(names):,} names; bound {TARGET_SECONDS} s per change")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
