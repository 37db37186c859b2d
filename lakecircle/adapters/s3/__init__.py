"""The S3 adapter: the one place that talks to AWS, and the only package that sees botocore.

One home per concern (ARCHITECTURE.md, "Code map"): :mod:`~lakecircle.adapters.s3.errors`
maps every exception from below to LakeCircle's errors; :mod:`~lakecircle.adapters.s3.botocore`
holds the adjustments to botocore, each with its measured reason;
:mod:`~lakecircle.adapters.s3.transport` opens the clients and makes every request (one
attempt observed and mapped, retried by :mod:`lakecircle.adapters.retry`);
:mod:`~lakecircle.adapters.s3.adapter` is :class:`~lakecircle.ports.LifecycleStore` (and
:class:`~lakecircle.ports.TagReader`) over it;
:mod:`~lakecircle.adapters.s3.stores` the definition source and the endpoint store;
:mod:`~lakecircle.adapters.s3.leases` the lease store (conditional writes) and its start-up check.
Importers name the module they use: this package re-exports nothing, so importing one
part (the CLI's ``validate`` of a local file) loads no more than it needs.
"""
