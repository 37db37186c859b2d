"""Where a profiled benchmark run spends its time: self and inclusive share per function.

    BENCH_PROFILE_DIR=/tmp/prof python bench/run.py --quick
    python bench/profile_report.py /tmp/prof/*.txt [--top 40] [--grep lakecircle]

Reads the collapsed stacks that ``bench/clients.py`` records with py-spy when
``BENCH_PROFILE_DIR`` is set (one file per measured cycle) and prints, per function, the
share of samples in it (self) and under it (inclusive, each stack counted once).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
_PREFIXES = ("site-packages/", "lib/python3.11/", "/work/main/")


def function_of(frame: str) -> str:
    """``name (path:line)`` as ``name (short/path)``: one entry per function, not per line."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["path"]
    for prefix in _PREFIXES:
        if prefix in path:
            path = path.split(prefix, 1)[1]
            break
    return f"{match['function']} ({path})"


def aggregate(lines: list[str]) -> tuple[Counter[str], Counter[str], int]:
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [function_of(f) for f in stack.split(";")]
        total += n
        self_samples[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return self_samples, inclusive, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--grep", default="", help="only functions whose name or file contains this")
    args = parser.parse_args()
    for path in args.profiles:
        self_samples, inclusive, total = aggregate(path.read_text().splitlines())
        print(f"== {path.name}: {total:,} samples")
        for title, counter in (("inclusive", inclusive), ("self", self_samples)):
            print(f"-- top by {title} samples")
            shown = 0
            for frame, n in counter.most_common():
                if args.grep and args.grep not in frame:
                    continue
                print(f"{n / max(total, 1):7.1%}  {frame}")
                shown += 1
                if shown >= args.top:
                    break
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
