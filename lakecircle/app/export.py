"""Export live lifecycle configurations as definition files, to adopt existing buckets.

Each file is written so that ``lakecircle validate`` on it finds no problem and
``lakecircle plan --definitions DIR`` right after reports no changes for its bucket: the
rules are written in the canonical form LakeCircle compares in
(:mod:`lakecircle.core.normalize`), with TransitionDefaultMinimumObjectSize where S3 reports
it. Written as a server returns them, some would not validate: servers that drop fields
hand back an ``And`` that holds one predicate or none (moto drops object-size filters), a
shape S3 itself refuses on a PUT, which the canonical form says as the bare predicate or
``Filter = {}``.

What a server holds may still be something a definition cannot say (a rule ID with a
control character, a storage class not in ``LCC_STORAGE_CLASSES``): each file is read back
and validated as ``validate`` would before it is written, and a bucket whose file would not
validate is not written but named, with every problem, so the folder an export writes
always validates.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog

from lakecircle.app.wiring import open_account
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.normalize import canonical_rule
from lakecircle.core.parse import parse_file
from lakecircle.core.render import config_toml
from lakecircle.core.validate.bucket import validate_bucket
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.ports import BucketRef, LifecycleStore
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.app.export")


class ExportError(LakeCircleError):
    """The output cannot be written: the export stops, naming the path and why."""


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote, and each bucket it could not export (the command then exits 1)."""

    written: list[Path]
    problems: list[str] = field(default_factory=list)
    """One line each: ``<bucket>: <why>``."""
    found: frozenset[str] = frozenset()
    """The buckets asked for (``--bucket``) that the account holds."""


def _cannot_write(path: Path, exc: OSError) -> ExportError:
    return ExportError(f"cannot write {path}: {exc.strerror or exc}; choose an --output LakeCircle can write to")


def exportable(bucket: str, config: LifecycleConfig) -> LifecycleConfig:
    """``config`` as a definition file writes it: each rule named and in canonical form, in
    the order the server gave them."""
    config = _named(bucket, config)
    rules = tuple(canonical_rule(r) for r in config.rules)
    return LifecycleConfig(rules, config.transition_default_minimum_object_size)


def _named(bucket: str, config: LifecycleConfig) -> LifecycleConfig:
    """``config`` with each rule S3 holds without an ID named ``rule-<n>`` (its place), so the
    definition file can name it."""
    unnamed = [i for i, r in enumerate(config.rules) if r.id is None]
    if not unnamed:
        return config
    named = tuple(
        r if r.id is not None else r.model_copy(update={"id": f"rule-{i + 1}"}) for i, r in enumerate(config.rules)
    )
    config = LifecycleConfig(named, config.transition_default_minimum_object_size)
    log.warning("export_named_rules", bucket=bucket, rules=len(unnamed))
    return config


def refused(name: str, text: str, storage_classes: Collection[str]) -> list[str]:
    """The errors ``validate`` would find in the file ``text``, one line each, empty if none."""
    parsed = parse_file(name, text.encode("utf-8"))
    found = [*parsed.problems, *(p for b in parsed.buckets for p in validate_bucket(b, storage_classes))]
    return [str(p) for p in found if p.is_error]


async def _write(path: Path, text: str) -> Path:
    try:
        await anyio.Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    return path


async def export_store(
    store: LifecycleStore,
    output_dir: Path,
    only: frozenset[str] | None,
    *,
    concurrency: int = 16,
    account: str | None = None,
    storage_classes: Collection[str] = (),
) -> Exported:
    """Write ``<bucket>.toml`` for every bucket (or those in ``only``) that has rules.

    A bucket that cannot be read is a problem of its own (the others are still written);
    an output that cannot be written raises ExportError. With ``account`` (one of many
    accounts) each file says ``Accounts = ["<account>"]``, and a bucket of ``only`` the
    account does not hold is left to the caller (another account may hold it). A bucket
    whose file would not validate (with ``storage_classes`` as the extra classes) is a
    problem too, naming each error, and is not written.
    """
    try:
        await anyio.Path(output_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(output_dir, exc) from None
    written: list[Path] = []
    problems: list[str] = []
    limiter = anyio.CapacityLimiter(concurrency)
    seen: set[str] = set()

    async def one(ref: BucketRef) -> None:
        async with limiter:
            try:
                config = await store.get_lifecycle(ref)
            except S3Error as exc:
                log.warning("export_failed", bucket=ref.name, error=str(exc))
                problems.append(f"{ref.name}: not exported: {exc}")
                return
        if not config.rules:
            return
        path = output_dir / f"{ref.name}.toml"
        text = config_toml(ref.name, exportable(ref.name, config), accounts=(account,) if account else ())
        if errors := refused(path.name, text, storage_classes):
            log.warning("export_refused", bucket=ref.name, errors=len(errors))
            problems.append(f"{ref.name}: not exported: it would not validate as a definition: {'; '.join(errors)}")
        else:
            written.append(await _write(path, text))

    try:
        async for page in store.iter_buckets():
            async with anyio.create_task_group() as tg:
                for ref in page:
                    if only is None or ref.name in only:
                        seen.add(ref.name)
                        tg.start_soon(one, ref)
    except* ExportError as group:
        raise group.exceptions[0] from None
    for name in sorted((only or frozenset()) - seen) if account is None else ():
        log.warning("bucket_missing", bucket=name)
        problems.append(f"{name}: not exported: no such bucket in the account")
    return Exported(sorted(written), sorted(problems), frozenset(seen))


async def export_account(settings: Settings, output_dir: Path, only: frozenset[str] | None) -> Exported:
    async with open_account(settings, need_endpoint=False) as account:
        return await export_store(
            account.adapter,
            output_dir,
            only,
            concurrency=settings.concurrency,
            storage_classes=settings.storage_classes,
        )
