"""The cost of the unknown-field check on each GetBucketLifecycleConfiguration answer.

Not a test: it prints, for answers of 1, 3 and 10 rules, the microseconds the
``before-parse`` check of :mod:`lakecircle.adapters.s3.unknown_fields` takes on an answer
seen for the first time and on one seen before (the buckets of a fleet answer with the same
bytes), the fastest of five runs of 2,000 each. Each answer is a new bytes object, whose
hash the remembered check computes.

    python bench/unknown_fields_bench.py
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import botocore.session

from lakecircle.adapters.s3 import unknown_fields

RULE = (
    b"<Rule><ID>r%d</ID><Status>Enabled</Status><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key>"
    b"<Value>v</Value></Tag><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></And></Filter>"
    b"<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"
    b"<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
    b"<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
)
HEAD = b'<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'


def main() -> None:
    operation = (
        botocore.session.get_session().get_service_model("s3").operation_model("GetBucketLifecycleConfiguration")
    )
    for rules in (1, 3, 10):
        body = HEAD + b"".join(RULE % i for i in range(rules)) + b"</LifecycleConfiguration>"

        def check(forget: bool, body: bytes = body) -> None:
            if forget:
                unknown_fields._remembered.cache_clear()
            added: dict[str, object] = {}
            answer = bytes(bytearray(body))  # a new object, as each answer is: its hash is not known yet
            unknown_fields.note_unknown_elements({"status_code": 200, "body": answer}, added, operation_model=operation)
            assert not added

        first = min(timeit.repeat(lambda: check(True), number=2000, repeat=5)) / 2000
        again = min(timeit.repeat(lambda: check(False), number=2000, repeat=5)) / 2000
        print(
            f"{rules:>2} rule(s), {len(body):>5} bytes:"
            f" {first * 1e6:6.1f} µs first seen, {again * 1e6:5.1f} µs seen before"
        )


if __name__ == "__main__":
    main()
