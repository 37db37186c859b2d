"""LakeCircle's own objects in S3: the definition files and the records under the endpoint.

:class:`S3DefinitionSource` implements :class:`~lakecircle.ports.DefinitionSource` over an
S3 prefix and :class:`S3EndpointStore` implements :class:`~lakecircle.ports.EndpointStore`
under ``LCC_ENDPOINT``, both through the :class:`~lakecircle.adapters.s3.adapter.S3Adapter`'s
object calls (ARCHITECTURE.md, "Records").
"""

from __future__ import annotations

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.ports import ObjectRef
from lakecircle.s3_uri import parse_s3_uri


class S3DefinitionSource:
    """The ``*.toml`` definition files under an S3 prefix, by key and ETag.

    A file is named by its key, or with ``full_names`` by its URI (``s3://bucket/key``, as
    ``lakecircle validate`` prints it beside local paths). A listing that cannot be
    followed to its end raises, like one that cannot be made: a cycle without the whole
    listing writes nothing.
    """

    def __init__(self, adapter: S3Adapter, uri: str, *, full_names: bool = False) -> None:
        self._adapter = adapter
        self.bucket, self.prefix = parse_s3_uri(uri)
        self._names = f"s3://{self.bucket}/" if full_names else ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    async def list_definitions(self) -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        try:
            async for page in self._adapter.iter_objects(self.bucket, self.prefix):
                refs.extend(
                    ObjectRef(self._names + str(o["Key"]), str(o.get("ETag") or "").strip('"'), int(o.get("Size") or 0))
                    for o in page
                    if str(o.get("Key", "")).endswith(".toml")
                )
        except errors.S3Error as exc:
            raise errors.DefinitionSourceError(f"cannot list the definitions at {self.location}: {exc}") from exc
        return refs

    async def fetch(self, ref: ObjectRef) -> bytes:
        """The file's bytes; never more than one byte over the limit, so the parser refuses it."""
        key = ref.key.removeprefix(self._names)
        return await self._adapter.read_object(self.bucket, key, limit=MAX_FILE_BYTES + 1)


class S3EndpointStore:
    """LakeCircle's own objects under ``LCC_ENDPOINT``; keys are relative to it."""

    def __init__(self, adapter: S3Adapter, uri: str) -> None:
        self._adapter = adapter
        self.bucket, self.prefix = parse_s3_uri(uri)

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        await self._adapter.write_object(self.bucket, self.prefix + key, data, content_type)

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            return await self._adapter.read_object(self.bucket, self.prefix + key)
        except errors.NotFound:
            return None

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        async for page in self._adapter.iter_objects(self.bucket, self.prefix + prefix):
            keys.extend(str(o["Key"]).removeprefix(self.prefix) for o in page)
        return sorted(keys)

    async def list_etags(self, prefix: str) -> dict[str, str]:
        etags: dict[str, str] = {}
        async for page in self._adapter.iter_objects(self.bucket, self.prefix + prefix):
            etags.update((str(o["Key"]).removeprefix(self.prefix), str(o.get("ETag") or "")) for o in page)
        return etags
