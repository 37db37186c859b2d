"""All definition files of one cycle, parsed, merged and validated into one value.

This is the desired state a cycle plans against. A bucket with any error is left out
of ``buckets`` and listed in ``invalid`` (it is skipped, never half-applied); a file that
could not be read or parsed as a whole makes the picture ``partial``, and a partial
picture removes no rules (ARCHITECTURE.md, "Safety", rule 6).

A daemon may manage a hundred thousand buckets, and a rule as models costs about 3 KB.
So the loader keeps each file in brief (:class:`FileBrief`: its compressed bytes, and
per bucket a digest of its rules and its problems) and builds :class:`Definitions` from
those with :func:`definitions_from_briefs`: ``desired`` tells which buckets are in sync
without any model, and ``buckets`` parses a bucket's files again only when it is asked
for one (the buckets that differ). :func:`build_definitions` is the same from parsed
files, for the commands that read a few files once.

Selectors (``BucketMatch``) are carried beside the buckets, whole: there are few of them,
and each is needed for every listing. A selector with an error is left out, listed in
``invalid_selectors``, and makes its file's picture partial: which buckets it meant, and
so which rules of theirs it would keep, is unknown until it is fixed (ARCHITECTURE.md,
"Safety", rule 6). ``storage_classes``: the server's own transition targets (``LCC_STORAGE_CLASSES``).
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from lakecircle.core.accounts import EVERY_ACCOUNT, AccountScope
from lakecircle.core.digest import Digest, rules_digest
from lakecircle.core.merge import merge
from lakecircle.core.model import BucketDefinition
from lakecircle.core.parse import ParsedFile, parse_file
from lakecircle.core.problems import Problem, has_errors
from lakecircle.core.selectors import Selector
from lakecircle.core.validate.bucket import validate_bucket, validate_selector


@dataclass(frozen=True, slots=True)
class Desired:
    """A valid bucket's definitions in brief: enough to tell that the bucket is in sync."""

    rules: Digest
    """:func:`lakecircle.core.digest.rules_digest` of its merged rules."""
    tdmos: str | None
    """Its TransitionDefaultMinimumObjectSize, None when the definitions are silent."""
    scope: AccountScope = field(default=EVERY_ACCOUNT, kw_only=True)
    """Its ``Accounts`` and ``AccountTags`` (:meth:`AccountScope.admits` says whether it applies
    in an account), so that a cycle that decides by digests knows it without a model."""


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
    whose name could not be read or is no name S3 can hold."""
    desired: Mapping[str, Desired] = field(default_factory=dict)
    """The valid buckets in brief (a bucket missing here is planned the long way)."""
    selectors: tuple[Selector, ...] = ()
    """The valid selectors, in the order of the files and of the tables in each."""
    invalid_selectors: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)
    """Selectors left out for their errors, by label (``file`` or ``file Bucket[2]``), with
    those errors. Their files are among ``unreadable``: their buckets are not all known."""
    briefs: tuple[FileBrief, ...] | None = None
    """The files in brief, in listing order, when the definitions were made from briefs (the
    loader's): :mod:`~lakecircle.core.targets` compares them file by file. None for
    :func:`build_definitions`, whose models are at hand."""

    @property
    def partial(self) -> bool:
        return bool(self.unreadable)

    @property
    def unreadable_files(self) -> tuple[UnreadableFile, ...]:
        """Each unreadable file with why (its file-level errors) and the line, where one is known."""
        reasons: dict[str, list[Problem]] = {name: [] for name in self.unreadable}
        for problem in self.problems:
            if problem.is_error and _of_whole_file(problem) and problem.file in reasons:
                reasons[problem.file].append(problem)
        return tuple(UnreadableFile.of(name, found) for name, found in reasons.items())

    @property
    def error_count(self) -> int:
        return sum(1 for p in self.problems if p.is_error)


_LINE = re.compile(r"\bline (\d+)")
"""Where a parser's message says where (tomllib: "(at line 2, column 5)")."""


@dataclass(frozen=True, slots=True)
class UnreadableFile:
    """A definition file whose buckets are not all known, and why (for reports and logs)."""

    file: str
    reason: str
    line: int | None = None

    @classmethod
    def of(cls, name: str, problems: Iterable[Problem]) -> UnreadableFile:
        problems = list(problems)
        reason = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
        lines = (getattr(p, "line", None) or _line_in(p.message) for p in problems)
        return cls(name, reason or "its buckets could not be read", next((n for n in lines if n), None))

    def as_dict(self) -> dict[str, str | int | None]:
        return {"file": self.file, "reason": self.reason, "line": self.line}


def _line_in(message: str) -> int | None:
    match = _LINE.search(message)
    return int(match.group(1)) if match else None


def _desired(bucket: BucketDefinition) -> Desired:
    tdmos = bucket.config.transition_default_minimum_object_size
    # One of two values in every file that sets it: shared, not a string per bucket.
    return Desired(rules_digest(bucket.config.rules), None if tdmos is None else sys.intern(tdmos), scope=bucket.scope)


def _of_whole_file(problem: Problem) -> bool:
    """A problem that leaves the file's buckets unknown: no bucket read at all, or a
    BucketName S3 cannot hold (``BKT-1`` may well mean ``bkt-1``, whose picture is then partial)."""
    return problem.bucket is None or problem.field == "BucketName"


def _sorted_out(problems: list[Problem], unreadable: list[str]) -> tuple[dict[str, tuple[Problem, ...]], list[str]]:
    """Split the errors: by bucket (the bucket is invalid), or of a whole file (unreadable),
    or both (a bucket name S3 cannot hold)."""
    invalid: dict[str, list[Problem]] = {}
    for problem in problems:
        if not problem.is_error:
            continue
        if _of_whole_file(problem) and problem.file not in unreadable:
            unreadable.append(problem.file)
        if problem.bucket is not None:
            invalid.setdefault(problem.bucket, []).append(problem)
    return {name: tuple(found) for name, found in invalid.items()}, unreadable


@dataclass(frozen=True, slots=True)
class _CheckedSelectors:
    """One file's selectors after validation."""

    valid: tuple[Selector, ...]
    invalid: tuple[tuple[str, tuple[Problem, ...]], ...]
    """(label, errors) of those that could not be read or did not pass."""
    problems: tuple[Problem, ...]
    """What validating their rules found (their reading's problems are the file's)."""

    @classmethod
    def of(cls, parsed: ParsedFile, storage_classes: Collection[str] = ()) -> _CheckedSelectors:
        """Every selector of the file validated, the incomplete ones too (so that all
        their problems come in one run)."""
        valid: list[Selector] = []
        invalid = {label: list(errors) for label, errors in parsed.broken_selectors}
        problems: list[Problem] = []
        for selector in (*parsed.selectors, *parsed.incomplete_selectors):
            found = validate_selector(selector, storage_classes)
            problems.extend(found)
            if selector.label in invalid or has_errors(found):
                invalid.setdefault(selector.label, []).extend(p for p in found if p.is_error)
            else:
                valid.append(selector)
        return cls(tuple(valid), tuple((label, tuple(errors)) for label, errors in invalid.items()), tuple(problems))


def build_definitions(parsed: Iterable[ParsedFile], storage_classes: Collection[str] = ()) -> Definitions:
    """Merge and validate already parsed files."""
    parsed = list(parsed)
    merged, problems = merge(parsed)
    checked = [_CheckedSelectors.of(f, storage_classes) for f in parsed]
    problems = [p for f, c in zip(parsed, checked, strict=True) for p in (*f.problems, *c.problems)] + problems
    for bucket in merged.values():
        problems.extend(validate_bucket(bucket, storage_classes))
    invalid, unreadable = _sorted_out(problems, [f.name for f in parsed if not f.readable])
    valid = {name: b for name, b in merged.items() if name not in invalid}
    return Definitions(
        buckets=valid,
        invalid=invalid,
        problems=tuple(problems),
        files=tuple(f.name for f in parsed),
        unreadable=tuple(unreadable),
        # No digests: these models are at hand, and the commands that read files once plan
        # every bucket (digests are what the loader keeps instead of models).
        selectors=tuple(s for c in checked for s in c.valid),
        invalid_selectors=dict(i for c in checked for i in c.invalid),
    )


def load_definitions(
    files: Mapping[str, bytes] | Iterable[tuple[str, bytes]], storage_classes: Collection[str] = ()
) -> Definitions:
    """Parse, merge and validate definition files given as (name, bytes)."""
    items = files.items() if isinstance(files, Mapping) else files
    return build_definitions((parse_file(name, data) for name, data in items), storage_classes)


# -- the compact form the loader keeps between cycles ---------------------------------------


@dataclass(frozen=True, slots=True)
class BucketBrief(Desired):
    """One bucket as one file defines it, in brief (its own :class:`Desired`: one object
    per bucket, not two)."""

    name: str
    problems: tuple[Problem, ...]
    """What :func:`validate_bucket` finds in this file's part alone."""


_ZDICT = b"".join(
    (
        b'BucketName = "',
        b'TransitionDefaultMinimumObjectSize = "all_storage_classes_128K"',
        b'"varies_by_storage_class"',
        b'Ownership = "shared"',
        b'[[LifecycleConfiguration.Rules]]\nID = "',
        b'Status = "Enabled"\n',
        b'Status = "Disabled"\n',
        b'Filter = { Prefix = "',
        b'Filter = { Tag = { Key = "',
        b'", Value = "',
        b'Filter = { And = { Prefix = "',
        b"Tags = [",
        b"ObjectSizeGreaterThan = ",
        b"ObjectSizeLessThan = ",
        b"Expiration = { Days = ",
        b"ExpiredObjectDeleteMarker = true",
        b"Transitions = [ { Days = ",
        b'StorageClass = "STANDARD_IA"',
        b'StorageClass = "GLACIER"',
        b'StorageClass = "DEEP_ARCHIVE"',
        b'StorageClass = "GLACIER_IR"',
        b'StorageClass = "INTELLIGENT_TIERING"',
        b'StorageClass = "ONEZONE_IA"',
        b"NoncurrentVersionExpiration = { NoncurrentDays = ",
        b"NewerNoncurrentVersions = ",
        b"NoncurrentVersionTransitions = [ { NoncurrentDays = ",
        b"AbortIncompleteMultipartUpload = { DaysAfterInitiation = ",
    )
)
"""What definition files have in common (the API's key names): zlib starts from it, which
takes a typical file from about 440 to 260 bytes."""


def _pack(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zdict=_ZDICT)
    return packer.compress(data) + packer.flush()


def _unpack(packed: bytes) -> bytes:
    unpacker = zlib.decompressobj(zdict=_ZDICT)
    return unpacker.decompress(packed) + unpacker.flush()


@dataclass(frozen=True, slots=True)
class FileBrief:
    """One definition file in brief: a few hundred bytes instead of its models."""

    name: str
    packed: bytes
    """The file's bytes, zlib-compressed (empty when it was never read)."""
    buckets: tuple[BucketBrief, ...]
    """Its buckets, complete and incomplete, in file order."""
    problems: tuple[Problem, ...]
    """What parsing it found, and validating its selectors."""
    readable: bool = True
    etag: str = ""
    """The ETag it was read at (the loader's cache key)."""
    selectors: tuple[Selector, ...] = ()
    """Its valid selectors, whole (few, and each needed for every listing)."""
    invalid_selectors: tuple[tuple[str, tuple[Problem, ...]], ...] = ()
    """(label, errors) of its selectors left out."""

    @classmethod
    def of(cls, parsed: ParsedFile, data: bytes, etag: str = "", storage_classes: Collection[str] = ()) -> FileBrief:
        """The brief of a file parsed from ``data``."""
        briefs = tuple(
            BucketBrief(d.rules, d.tdmos, b.name, tuple(validate_bucket(b, storage_classes)), scope=d.scope)
            for b in (*parsed.buckets, *parsed.incomplete)
            for d in (_desired(b),)
        )
        packed = _pack(data) if briefs else b""
        checked = _CheckedSelectors.of(parsed, storage_classes)
        return cls(
            parsed.name,
            packed,
            briefs,
            parsed.problems + checked.problems,
            parsed.readable,
            etag,
            checked.valid,
            checked.invalid,
        )

    def parse(self) -> ParsedFile:
        """The file parsed again from its bytes (the same result as the first time)."""
        return parse_file(self.name, _unpack(self.packed) if self.packed else b"")


class LazyBuckets(Mapping[str, BucketDefinition]):
    """The valid buckets by name; each one's models are built again from its files' bytes
    when it is looked up, and not kept."""

    __slots__ = ("_files",)

    def __init__(self, files: dict[str, FileBrief | tuple[FileBrief, ...]]) -> None:
        self._files = files
        """Each bucket's file, or files when several define it."""

    def __getitem__(self, name: str) -> BucketDefinition:
        files = self._files[name]
        merged, _ = merge(f.parse() for f in ((files,) if isinstance(files, FileBrief) else files))
        return merged[name]

    def __contains__(self, name: object) -> bool:
        return name in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def models(self, names: Iterable[str]) -> Iterator[BucketDefinition]:
        """The buckets ``names`` holds, built file by file: each file (or set of files one
        bucket shares) is parsed once for all of its buckets, not once per lookup."""
        groups: dict[tuple[str, ...], tuple[tuple[FileBrief, ...], list[str]]] = {}
        for name in names:
            found = self._files[name]
            files = (found,) if isinstance(found, FileBrief) else found
            groups.setdefault(tuple(f.name for f in files), (files, []))[1].append(name)
        for files, group in groups.values():
            merged, _ = merge(f.parse() for f in files)
            yield from (merged[name] for name in group)


def bucket_models(buckets: Mapping[str, BucketDefinition], names: Iterable[str]) -> Iterator[BucketDefinition]:
    """The models of the buckets ``names`` holds, each of ``buckets`` (what
    :attr:`Definitions.buckets` holds), at the cost of one parse per file (:meth:`LazyBuckets.models`)."""
    if isinstance(buckets, LazyBuckets):
        return buckets.models(names)
    return (buckets[name] for name in names)


def definitions_from_briefs(briefs: Iterable[FileBrief], storage_classes: Collection[str] = ()) -> Definitions:
    """The same value :func:`build_definitions` makes of these files parsed, from their briefs.

    A bucket defined in one file (the usual case) needs nothing but its brief. The files
    of a bucket that several files define are parsed again, merged and validated whole.
    """
    briefs = list(briefs)
    files_of: dict[str, list[FileBrief]] = {}
    first: dict[str, BucketBrief] = {}
    for brief in briefs:
        for bucket in brief.buckets:
            files_of.setdefault(bucket.name, []).append(brief)
            first.setdefault(bucket.name, bucket)
    shared = {name for name, files in files_of.items() if len(files) > 1}
    merged: dict[str, BucketDefinition] = {}
    problems = [p for b in briefs for p in b.problems]
    if shared:
        wanted = {f.name for name in shared for f in files_of[name]}
        again = [b.parse() for b in briefs if b.name in wanted]  # in the order of the listing
        merged_all, merge_problems = merge(again)
        merged = {n: merged_all[n] for n in shared}
        problems += merge_problems
    desired: dict[str, Desired] = {}
    for name, bucket in first.items():
        if name in shared:
            problems.extend(validate_bucket(merged[name], storage_classes))
            desired[name] = _desired(merged[name])
        else:
            problems.extend(bucket.problems)
            desired[name] = bucket
    invalid, unreadable = _sorted_out(problems, [b.name for b in briefs if not b.readable])
    valid_files: dict[str, FileBrief | tuple[FileBrief, ...]] = {
        name: files[0] if len(files) == 1 else tuple(files) for name, files in files_of.items() if name not in invalid
    }
    return Definitions(
        buckets=LazyBuckets(valid_files),
        invalid=invalid,
        problems=tuple(problems),
        files=tuple(b.name for b in briefs),
        unreadable=tuple(unreadable),
        desired={name: d for name, d in desired.items() if name not in invalid},
        selectors=tuple(s for b in briefs for s in b.selectors),
        invalid_selectors=dict(i for b in briefs for i in b.invalid_selectors),
        briefs=tuple(briefs),
    )
