"""The reconcile engine: one cycle, the definition loader, history records and rollback.

It talks to S3 only through the Protocols of :mod:`lakecircle.ports`. See ARCHITECTURE.md.
"""
