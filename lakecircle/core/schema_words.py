"""The words of the definition schema: its title, and what each key and table means.

Kept apart from :mod:`lakecircle.core.definition_schema`, which builds the schema's shape
from the parser's models, because these are prose an editor shows on hover and beside a
completion. A key is described the same wherever it stands (``Days`` in ``Expiration`` and
in a transition), so each description says what the key means in every place it appears.
"""

from __future__ import annotations

from typing import Final

DEFINITION_TITLE: Final = "LakeCircle definition file"

FILE_DESCRIPTION: Final = (
    "The S3 lifecycle rules LakeCircle keeps on buckets: one bucket (BucketName), a selector that names"
    " its buckets by pattern (BucketMatch), or several of either as [[Bucket]] tables. Keys mirror the"
    " S3 API's LifecycleConfiguration. `lakecircle validate` checks what a schema cannot: S3's limits,"
    " which actions go together, bucket names."
)

MODEL_TITLES: Final = {
    "Bucket": "One bucket's definition",
    "Selector": "Buckets selected by pattern and tag",
    "Buckets": "Several definitions in one file",
    "Table": "One bucket or one selector",
    "LifecycleConfiguration": "The bucket's lifecycle configuration",
    "Rule": "One lifecycle rule",
    "Filter": "Which objects the rule applies to",
    "AndOperator": "Several conditions that must all hold",
    "Tag": "An object tag",
    "Expiration": "When current objects expire",
    "Transition": "When current objects move to another storage class",
    "NoncurrentVersionExpiration": "When noncurrent versions are deleted",
    "NoncurrentVersionTransition": "When noncurrent versions move to another storage class",
    "AbortIncompleteMultipartUpload": "When unfinished multipart uploads are stopped",
}

DESCRIPTIONS: Final = {
    # The tables beside the rules.
    "BucketName": "The bucket this file defines (a general purpose bucket name).",
    "BucketMatch": (
        'Glob patterns (* ? [seq] [!seq]) on whole bucket names, case-sensitive; ["*"] is every bucket.'
        " The table then defines every bucket a pattern matches."
    ),
    "BucketExclude": "Bucket names to leave out of those BucketMatch selects, as the same patterns.",
    "BucketTags": "Tags a bucket must carry, every one with this exact value, to be selected.",
    "TransitionDefaultMinimumObjectSize": (
        "The smallest object S3 transitions by default; left out, the bucket's live value is kept."
    ),
    "Ownership": (
        "authoritative: rules the definitions do not name are removed (the default of BucketName)."
        " shared: only rules LakeCircle applied itself are removed (the default of BucketMatch)."
    ),
    "Accounts": "The 12-digit account IDs the definition applies in (quoted); left out, every account.",
    "AccountTags": "Tags an account must carry, every one with this exact value, for the definition to apply.",
    "LifecycleConfiguration": "The bucket's lifecycle configuration, as S3's API spells it.",
    "Rules": (
        "The bucket's rules. Required: an empty array deletes the bucket's lifecycle configuration,"
        " a missing key is an error, so a half-written file never deletes anything."
    ),
    "Bucket": "One table per bucket ([[Bucket]]) or selector, with the same keys as a whole-file definition.",
    # A rule.
    "ID": "The rule's identity in plans and history: 1 to 255 characters, unique in the bucket.",
    "Status": "Enabled, or Disabled to keep the rule without applying it.",
    "Filter": "Which objects the rule applies to: one condition, or several under And. Left out: the whole bucket.",
    "Prefix": (
        "Object keys beginning with this. At the rule's top level it is S3's legacy form of a filter,"
        " which a bucket's rules either all use or none."
    ),
    "Tag": "Objects carrying this tag.",
    "Tags": "Objects carrying every one of these tags.",
    "Key": "The tag's key.",
    "Value": "The tag's value.",
    "ObjectSizeGreaterThan": "Objects larger than this many bytes.",
    "ObjectSizeLessThan": "Objects smaller than this many bytes.",
    "And": "Several conditions (prefix, tags, sizes) that must all hold.",
    "Expiration": "When current objects expire: after Days, on a Date, or the expired delete markers.",
    "Transitions": "When current objects move to other storage classes, each after Days or on a Date.",
    "NoncurrentVersionExpiration": "When noncurrent versions are deleted.",
    "NoncurrentVersionTransitions": "When noncurrent versions move to other storage classes.",
    "AbortIncompleteMultipartUpload": "When unfinished multipart uploads are stopped and their parts deleted.",
    "Days": "Days after an object's creation.",
    "Date": "A day at midnight UTC: a TOML date (2030-01-01), a date-time or an ISO 8601 string.",
    "ExpiredObjectDeleteMarker": "true: delete a delete marker once no version stands behind it.",
    "StorageClass": (
        "The storage class to move to: one of AWS's, or a name the server accepts beside them"
        " (allowed with LCC_STORAGE_CLASSES)."
    ),
    "NoncurrentDays": "Days after a version became noncurrent.",
    "NewerNoncurrentVersions": "How many newer noncurrent versions to keep before this one is acted on.",
    "DaysAfterInitiation": "Days after the upload began.",
}
"""Each key's description, by its TOML name."""
