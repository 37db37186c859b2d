"""The outside world behind the ports: S3 over aioboto3, retries and local files.

Adapters know nothing of the engine, the service or the commands. See ARCHITECTURE.md.
"""
