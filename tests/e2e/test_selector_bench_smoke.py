"""The selector matching benchmark runs, small, and bench/run.py prints its section.

No timing is asserted (figures are the benchmark's to print): only that the script
answers its JSON, that its matches agree with fnmatch over the same workload, and that
the report has section 8 and its target.
"""

from __future__ import annotations

import fnmatch
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import render
from bench.selector_bench import SEED, bucket_names, selectors

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_the_selector_benchmark_prints_its_figures_as_json() -> None:
    done = subprocess.run(  # noqa: S603 -- our own interpreter and script
        [
            sys.executable,
            str(ROOT / "bench" / "selector_bench.py"),
            "--json",
            "--buckets",
            "300",
            "--selectors",
            "40",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=ROOT,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    rng = random.Random(SEED)
    names = bucket_names(rng, 300)
    chosen = selectors(rng, 40)
    naive = sum(
        1
        for name in names
        for s in chosen
        if any(fnmatch.fnmatchcase(name, p) for p in s.match)
        and not any(fnmatch.fnmatchcase(name, p) for p in s.exclude)
    )
    assert (figures["buckets"], figures["selectors"], figures["repeat"]) == (300, 40, 1)
    assert figures["matches"] == naive > 0
    assert figures["match_s"] > 0


def test_the_benchmark_report_has_the_selector_section_and_target() -> None:
    figures = {
        "buckets": 100_000,
        "selectors": 500,
        "patterns": 880,
        "compile_s": 0.01,
        "match_s": 0.7,
        "matches": 500_000,
        "target_s": 1.0,
        "repeat": 3,
    }
    report = render({"selectors": figures, "plan": {"concurrency": 16}, "sections": ["selectors"]})
    assert "### 8. Selector matching (bench/selector_bench.py)" in report
    assert "| Matching 100,000 names x 500 selectors under 1 s | 0.70 s | PASS |" in report
