"""Parse time of one definition file of just under 1 MiB, with tomli and with Python's tomllib.

Not a test: it prints the best of five runs of each reader over the same text, so the
choice of tomli (lakecircle/toml_reader.py) can be checked on any machine. The file is
``[[Bucket]]`` tables of the rules ``bench/plan_bench.py`` writes (seeded).

    python bench/parse_1mib.py
"""

from __future__ import annotations

import random
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plan_bench import make_definitions
from lakecircle.core.parse import MAX_FILE_BYTES, parse_file
from lakecircle.core.toml_reader import READER, TOMLI, TOMLLIB, read_toml


def one_file() -> str:
    """Buckets of ten rules each as ``[[Bucket]]`` tables, as many as fit in 1 MiB."""
    parts: list[str] = []
    size = 0
    for data in make_definitions(random.Random(7), 2000, 10).values():
        text = data.decode().replace("BucketName", "[[Bucket]]\nBucketName", 1)
        text = text.replace("[[LifecycleConfiguration.Rules]]", "[[Bucket.LifecycleConfiguration.Rules]]")
        if size + len(text.encode()) + 1 > MAX_FILE_BYTES:
            break
        parts.append(text)
        size += len(text.encode()) + 1
    return "\n".join(parts)


def best(run: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> int:
    text = one_file()
    data = text.encode()
    assert parse_file("one.toml", data).problems == ()
    print(f"{len(data):,} bytes, {text.count('[[Bucket]]')} buckets, {text.count('Rules]]')} rules")
    print(f"reader in use: {READER.name}")
    if TOMLI is not None:
        print(f"  read_toml with tomli             {best(lambda: read_toml(text, TOMLI)):7.3f} s")
    print(f"  read_toml with tomllib (+guard)  {best(lambda: read_toml(text, TOMLLIB)):7.3f} s")
    print(f"  tomllib.loads alone              {best(lambda: tomllib.loads(text)):7.3f} s")
    print(f"  parse_file (reader + models)     {best(lambda: parse_file('one.toml', data)):7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
