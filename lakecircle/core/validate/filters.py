"""The checks of a rule's filter: one predicate, And of two or more, tags and sizes.

The constraints are those S3 documents for ``Filter`` (4 and 5 of the numbered list);
:mod:`lakecircle.core.validate.rule` calls them for each rule that has a filter.
"""

from __future__ import annotations

from collections import Counter

from lakecircle.core.model import AndOperator, Filter
from lakecircle.core.problems import shown
from lakecircle.core.validate.findings import (
    ERROR,
    MAX_LONG,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    Finding,
    at_most,
    check_text,
)


def check_size_limits(flt: Filter, out: list[Finding]) -> None:
    """Object sizes beyond 64 bits: the models already hold them to it, a value built without them may not."""
    if flt.object_size_greater_than is not None or flt.object_size_less_than is not None:
        at_most(out, "Filter.ObjectSizeGreaterThan", flt.object_size_greater_than, MAX_LONG)
        at_most(out, "Filter.ObjectSizeLessThan", flt.object_size_less_than, MAX_LONG)
    op = flt.and_
    if op is not None and (op.object_size_greater_than is not None or op.object_size_less_than is not None):
        at_most(out, "Filter.And.ObjectSizeGreaterThan", op.object_size_greater_than, MAX_LONG)
        at_most(out, "Filter.And.ObjectSizeLessThan", op.object_size_less_than, MAX_LONG)


def check_filter(flt: Filter, out: list[Finding]) -> None:
    # 4. At most one predicate; And holds at least two; unique tag keys; tag lengths;
    # no control characters in prefixes and tags.
    tag, greater, less = flt.tag, flt.object_size_greater_than, flt.object_size_less_than
    if flt.prefix is not None and not flt.prefix.isprintable():
        check_text("Filter.Prefix", "Prefix", flt.prefix, out)
    if (flt.prefix is not None) + (tag is not None) + (greater is not None) + (less is not None) + (
        flt.and_ is not None
    ) > 1:
        present = [
            name
            for name, value in (
                ("Prefix", flt.prefix),
                ("Tag", tag),
                ("ObjectSizeGreaterThan", greater),
                ("ObjectSizeLessThan", less),
                ("And", flt.and_),
            )
            if value is not None
        ]
        out.append(
            (
                "Filter",
                f"Filter holds {', '.join(present)}; a Filter holds one predicate, combine several inside And",
                ERROR,
            )
        )
    if tag is not None:
        _check_tag("Filter.Tag", tag.key, tag.value, out)
    if greater is not None or less is not None:
        _check_sizes("Filter", greater, less, out)
    if flt.and_ is not None:
        _check_and(flt.and_, out)


def _check_and(op: AndOperator, out: list[Finding]) -> None:
    tags = op.tags
    count = (
        (op.prefix is not None)
        + len(tags)
        + (op.object_size_greater_than is not None)
        + (op.object_size_less_than is not None)
    )
    if count < 2:
        out.append(
            ("Filter.And", "And holds fewer than two predicates; S3 wants a single predicate outside And", ERROR)
        )
    if op.prefix is not None and not op.prefix.isprintable():
        check_text("Filter.And.Prefix", "Prefix", op.prefix, out)
    for index, tag in enumerate(tags):
        key, value = tag.key, tag.value
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE or not (key + value).isprintable():
            _check_tag(f"Filter.And.Tags[{index}]", key, value, out)
    if len(tags) > 1:
        keys = [t.key for t in tags]
        if len(set(keys)) != len(keys):
            for key, n in Counter(keys).items():
                if n > 1:
                    out.append(
                        (
                            "Filter.And.Tags",
                            f"tag key {shown(key)} appears {n} times; tag keys in And must be unique",
                            ERROR,
                        )
                    )
    if op.object_size_greater_than is not None or op.object_size_less_than is not None:
        _check_sizes("Filter.And", op.object_size_greater_than, op.object_size_less_than, out)


def _check_tag(path: str, key: str, value: str, out: list[Finding]) -> None:
    if not 1 <= len(key) <= MAX_TAG_KEY:
        out.append((f"{path}.Key", f"tag key is {len(key)} characters; S3 allows 1 to {MAX_TAG_KEY}", ERROR))
    if len(value) > MAX_TAG_VALUE:
        out.append((f"{path}.Value", f"tag value is {len(value)} characters; S3 allows at most {MAX_TAG_VALUE}", ERROR))
    if not key.isprintable():
        check_text(f"{path}.Key", "tag key", key, out)
    if not value.isprintable():
        check_text(f"{path}.Value", "tag value", value, out)


def _check_sizes(path: str, greater: int | None, less: int | None, out: list[Finding]) -> None:
    # 5. ObjectSizeGreaterThan >= 0, ObjectSizeLessThan >= 1, less-than above greater-than.
    if greater is not None and greater < 0:
        out.append(
            (f"{path}.ObjectSizeGreaterThan", f"ObjectSizeGreaterThan is {greater}; it must be at least 0", ERROR)
        )
    if less is not None and less < 1:
        out.append((f"{path}.ObjectSizeLessThan", f"ObjectSizeLessThan is {less}; it must be at least 1", ERROR))
    if greater is not None and less is not None and less <= greater:
        out.append(
            (
                f"{path}.ObjectSizeLessThan",
                f"ObjectSizeLessThan ({less}) must be greater than ObjectSizeGreaterThan ({greater})",
                ERROR,
            )
        )


def filters_tags_or_size(flt: Filter | None) -> bool:
    """True when the filter selects by tag or object size (anything but a prefix)."""
    if flt is None:
        return False
    if flt.tag is not None or flt.object_size_greater_than is not None or flt.object_size_less_than is not None:
        return True
    op = flt.and_
    return op is not None and bool(
        op.tags or op.object_size_greater_than is not None or op.object_size_less_than is not None
    )
