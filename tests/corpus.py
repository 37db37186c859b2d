"""Real-world lifecycle configurations, as people put them on buckets.

The shapes come from the S3 user guide's examples and from what projects commonly keep on
their buckets: logs that age into colder classes, temporary prefixes, tag- and size-scoped
rules, whole-bucket housekeeping of versions, delete markers and multipart uploads, the
legacy rule-level ``Prefix`` form, date-based rules. Each value is the keyword arguments of
PutBucketLifecycleConfiguration, written the way a person or a tool writes them (an ``And``
with one predicate, ``Filter {Prefix: ""}``, a false ``ExpiredObjectDeleteMarker``: forms
S3 takes, which a server may hand back as they came or in another shape).

Used by the tests that prove every configuration a server returns exports to definitions
that validate and plan clean.
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]


def _rules(*rules: dict[str, Any]) -> Config:
    return {"LifecycleConfiguration": {"Rules": list(rules)}}


def _tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs]


CORPUS: dict[str, Config] = {
    "expire-logs-30": _rules(
        {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    ),
    "whole-bucket-expire": _rules({"ID": "expire-all", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 90}}),
    "empty-prefix-filter": _rules(
        {"ID": "everything", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 400}}
    ),
    "ia-then-glacier": _rules(
        {
            "ID": "age-out",
            "Status": "Enabled",
            "Filter": {"Prefix": "documents/"},
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 365, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 3650},
        }
    ),
    "deep-archive-backups": _rules(
        {
            "ID": "backups-to-deep-archive",
            "Status": "Enabled",
            "Filter": {"Prefix": "backups/"},
            "Transitions": [{"Days": 0, "StorageClass": "DEEP_ARCHIVE"}],
        }
    ),
    "intelligent-tiering-day-0": _rules(
        {
            "ID": "tier",
            "Status": "Enabled",
            "Filter": {},
            "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
        }
    ),
    "glacier-ir-and-expire": _rules(
        {
            "ID": "media",
            "Status": "Enabled",
            "Filter": {"Prefix": "media/"},
            "Transitions": [{"Days": 90, "StorageClass": "GLACIER_IR"}],
            "Expiration": {"Days": 730},
        }
    ),
    "one-zone-ia": _rules(
        {
            "ID": "thumbnails",
            "Status": "Enabled",
            "Filter": {"Prefix": "thumbs/"},
            "Transitions": [{"Days": 30, "StorageClass": "ONEZONE_IA"}],
        }
    ),
    "tag-filter": _rules(
        {
            "ID": "scratch-by-tag",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "lifecycle", "Value": "scratch"}},
            "Expiration": {"Days": 7},
        }
    ),
    "and-prefix-and-tags": _rules(
        {
            "ID": "tmp-tagged",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "tmp/", "Tags": _tags(("team", "data"), ("retention", "short"))}},
            "Expiration": {"Days": 3},
        }
    ),
    "and-two-tags": _rules(
        {
            "ID": "two-tags",
            "Status": "Enabled",
            "Filter": {"And": {"Tags": _tags(("env", "dev"), ("owner", "ci"))}},
            "Expiration": {"Days": 14},
        }
    ),
    "and-one-prefix": _rules(
        {"ID": "and-prefix", "Status": "Enabled", "Filter": {"And": {"Prefix": "exports/"}}, "Expiration": {"Days": 60}}
    ),
    "and-prefix-empty-tags": _rules(
        {
            "ID": "and-prefix-no-tags",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "reports/", "Tags": []}},
            "Expiration": {"Days": 180},
        }
    ),
    "and-one-tag": _rules(
        {
            "ID": "and-tag",
            "Status": "Enabled",
            "Filter": {"And": {"Tags": _tags(("classification", "ephemeral"))}},
            "Expiration": {"Days": 1},
        }
    ),
    "and-one-size": _rules(
        {
            "ID": "and-size",
            "Status": "Enabled",
            "Filter": {"And": {"ObjectSizeGreaterThan": 1048576}},
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
        }
    ),
    "size-greater-than": _rules(
        {
            "ID": "big-objects",
            "Status": "Enabled",
            "Filter": {"ObjectSizeGreaterThan": 134217728},
            "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
        }
    ),
    "size-less-than": _rules(
        {
            "ID": "small-objects",
            "Status": "Enabled",
            "Filter": {"ObjectSizeLessThan": 4096},
            "Expiration": {"Days": 30},
        }
    ),
    "size-range-and-prefix": _rules(
        {
            "ID": "mid-sized-videos",
            "Status": "Enabled",
            "Filter": {
                "And": {"Prefix": "videos/", "ObjectSizeGreaterThan": 1048576, "ObjectSizeLessThan": 1073741824}
            },
            "Transitions": [{"Days": 60, "StorageClass": "GLACIER_IR"}],
        }
    ),
    "legacy-prefix": _rules({"ID": "legacy-logs", "Status": "Enabled", "Prefix": "logs/", "Expiration": {"Days": 45}}),
    "legacy-two-prefixes": _rules(
        {"ID": "legacy-a", "Status": "Enabled", "Prefix": "a/", "Expiration": {"Days": 10}},
        {
            "ID": "legacy-b",
            "Status": "Enabled",
            "Prefix": "b/",
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
        },
    ),
    "legacy-empty-prefix": _rules(
        {
            "ID": "legacy-all",
            "Status": "Enabled",
            "Prefix": "",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        }
    ),
    "noncurrent-expire": _rules(
        {"ID": "old-versions", "Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
    ),
    "noncurrent-keep-newest": _rules(
        {
            "ID": "keep-five-versions",
            "Status": "Enabled",
            "Filter": {},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 5},
        }
    ),
    "noncurrent-transitions": _rules(
        {
            "ID": "versions-cold",
            "Status": "Enabled",
            "Filter": {"Prefix": "data/"},
            "NoncurrentVersionTransitions": [
                {"NoncurrentDays": 30, "StorageClass": "STANDARD_IA"},
                {"NoncurrentDays": 90, "StorageClass": "GLACIER", "NewerNoncurrentVersions": 3},
            ],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 365},
        }
    ),
    "delete-markers": _rules(
        {
            "ID": "clean-delete-markers",
            "Status": "Enabled",
            "Filter": {},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        }
    ),
    "abort-multipart": _rules(
        {
            "ID": "abort-uploads",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ),
    "abort-multipart-prefix": _rules(
        {
            "ID": "abort-ingest-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": "ingest/"},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3},
            "Expiration": {"Days": 30},
        }
    ),
    "expiration-date": _rules(
        {
            "ID": "fiscal-year-end",
            "Status": "Enabled",
            "Filter": {"Prefix": "fy2025/"},
            "Expiration": {"Date": "2031-01-01T00:00:00Z"},
        }
    ),
    "transition-date": _rules(
        {
            "ID": "archive-on-date",
            "Status": "Enabled",
            "Filter": {"Prefix": "campaign/"},
            "Transitions": [{"Date": "2030-06-01T00:00:00Z", "StorageClass": "GLACIER"}],
        }
    ),
    "disabled-rule": _rules(
        {"ID": "paused", "Status": "Disabled", "Filter": {"Prefix": "staging/"}, "Expiration": {"Days": 5}}
    ),
    "false-delete-marker": _rules(
        {
            "ID": "explicit-false",
            "Status": "Enabled",
            "Filter": {"Prefix": "keep/"},
            "Expiration": {"ExpiredObjectDeleteMarker": False},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 100},
        }
    ),
    "cloudtrail-logs": _rules(
        {
            "ID": "cloudtrail",
            "Status": "Enabled",
            "Filter": {"Prefix": "AWSLogs/"},
            "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 2555},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        }
    ),
    "data-lake-zones": _rules(
        {"ID": "raw", "Status": "Enabled", "Filter": {"Prefix": "raw/"}, "Expiration": {"Days": 30}},
        {
            "ID": "curated",
            "Status": "Enabled",
            "Filter": {"Prefix": "curated/"},
            "Transitions": [{"Days": 180, "StorageClass": "STANDARD_IA"}],
        },
        {
            "ID": "temp-by-tag",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "scratch/", "Tags": _tags(("temp", "true"))}},
            "Expiration": {"Days": 2},
        },
        {
            "ID": "housekeeping",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 14},
        },
    ),
    "many-transitions": _rules(
        {
            "ID": "ladder",
            "Status": "Enabled",
            "Filter": {"Prefix": "archive/"},
            "Transitions": [
                {"Days": 365, "StorageClass": "DEEP_ARCHIVE"},
                {"Days": 30, "StorageClass": "STANDARD_IA"},
                {"Days": 90, "StorageClass": "GLACIER_IR"},
                {"Days": 180, "StorageClass": "GLACIER"},
            ],
        }
    ),
    "unicode-prefix-and-tag": _rules(
        {
            "ID": "café-rapports",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "rapports/été/", "Tags": _tags(("équipe", "données"), ("x", "y"))}},
            "Expiration": {"Days": 21},
        }
    ),
    "tdmos-varies": {
        **_rules(
            {
                "ID": "small-to-ia",
                "Status": "Enabled",
                "Filter": {"Prefix": "small/"},
                "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
            }
        ),
        "TransitionDefaultMinimumObjectSize": "varies_by_storage_class",
    },
    "empty-tag-values": _rules(
        # An empty tag value, which moto returns without its Value element.
        {
            "ID": "untagged-team",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "team", "Value": ""}},
            "Expiration": {"Days": 5},
        },
        {
            "ID": "blank-pair",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "tmp/", "Tags": _tags(("a", ""), ("b", "2"))}},
            "Expiration": {"Days": 6},
        },
    ),
}
"""37 configurations, by the name of the bucket that holds each in a test."""
