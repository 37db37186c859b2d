"""Check a bucket's definition against the constraints S3 documents, before any write.

Every problem is returned at once, each naming file, bucket, rule and field and saying
what to change. Only what S3 is documented to reject is an error (a false rejection
blocks a valid rule); where the documentation is unclear the problem is a warning and
says so (ARCHITECTURE.md, "Safety", rule 5). The numbered comments in the modules follow
one list of those constraints, so each check can be found by its number.

The package is cut by what is checked: :mod:`.bucket` (the entry point,
:func:`~lakecircle.core.validate.bucket.validate_bucket`: names, counts, IDs, forms),
:mod:`.rule` (one rule), :mod:`.filters` (a rule's filter) and :mod:`.actions` (its
expiration and transitions), with :mod:`.findings` for what they share.
"""
