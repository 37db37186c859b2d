"""All definition files of one cycle, parsed, merged and validated into one value.

This is the desired state a cycle plans against. A bucket with any error is left out
of ``buckets`` and listed in ``invalid`` (it is skipped, never half-applied); a file that
could not be read or parsed as a whole makes the picture ``partial``, and a partial
picture removes no rules (DESIGN.md, rule 6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lakecircle.model import BucketDefinition
from lakecircle.parse import ParsedFile, merge, parse_file
from lakecircle.problems import Problem
from lakecircle.validate import validate_bucket


@dataclass(frozen=True, slots=True)
class Definitions:
    buckets: Mapping[str, BucketDefinition]
    """The valid buckets, by name."""
    invalid: Mapping[str, tuple[Problem, ...]]
    """Buckets skipped for their errors, with those errors."""
    problems: tuple[Problem, ...]
    """Every problem found, errors and warnings, in file order."""
    files: tuple[str, ...]
    unreadable: tuple[str, ...]
    """Files whose buckets are not all known: too large, not UTF-8, not TOML, or a bucket
    whose name could not be read."""

    @property
    def partial(self) -> bool:
        return bool(self.unreadable)

    @property
    def error_count(self) -> int:
        return sum(1 for p in self.problems if p.is_error)


def build_definitions(parsed: Iterable[ParsedFile]) -> Definitions:
    """Merge and validate already parsed files (a cache may hold parsed files by ETag)."""
    parsed = list(parsed)
    merged, problems = merge(parsed)
    problems = [p for f in parsed for p in f.problems] + problems
    for bucket in merged.values():
        problems.extend(validate_bucket(bucket))
    invalid: dict[str, list[Problem]] = {}
    unreadable: list[str] = [f.name for f in parsed if not f.readable]
    for problem in problems:
        if not problem.is_error:
            continue
        if problem.bucket is None:
            if problem.file not in unreadable:
                unreadable.append(problem.file)
        else:
            invalid.setdefault(problem.bucket, []).append(problem)
    return Definitions(
        buckets={name: b for name, b in merged.items() if name not in invalid},
        invalid={name: tuple(found) for name, found in invalid.items()},
        problems=tuple(problems),
        files=tuple(f.name for f in parsed),
        unreadable=tuple(unreadable),
    )


def load_definitions(files: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> Definitions:
    """Parse, merge and validate definition files given as (name, bytes)."""
    items = files.items() if isinstance(files, Mapping) else files
    return build_definitions(parse_file(name, data) for name, data in items)
