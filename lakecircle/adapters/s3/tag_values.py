"""Tags a server returned without their ``Value``: an empty value, said by leaving it out.

A tag filter may match an empty tag value (``Tag = { Key = "k", Value = "" }``). S3 returns
it as ``<Value></Value>``, which botocore reads as ``""``; other servers leave the empty
element out (moto does, as Go's ``omitempty`` does), and botocore's answer then has a tag
without ``Value``. The model refuses that as malformed, so the bucket failed every cycle and
``export`` skipped it, for a configuration LakeCircle itself wrote. A tag that has a ``Key``
and no ``Value`` is read as the empty value it stands for; anything else is left to the model.
"""

from __future__ import annotations

from typing import Any


def with_empty_values(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` (GetBucketLifecycleConfiguration's, parsed) with ``Value = ""`` put in each
    filter tag that has a ``Key`` and no ``Value``, in place."""
    for rule in response.get("Rules") or ():
        flt = rule.get("Filter") if isinstance(rule, dict) else None
        if not isinstance(flt, dict):
            continue
        conjunction = flt.get("And")
        tags = [flt.get("Tag"), *(conjunction.get("Tags") or () if isinstance(conjunction, dict) else ())]
        for tag in tags:
            if isinstance(tag, dict) and "Key" in tag and "Value" not in tag:
                tag["Value"] = ""
    return response
