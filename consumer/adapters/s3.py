"""The drop folder's bucket through aiobotocore: read an object version, read and write its tags.

Only this module talks to S3. The task role needs `s3:GetObject[Version]`,
`s3:GetObject[Version]Tagging` and `s3:PutObject[Version]Tagging` on the drop folder's prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from consumer.core.s3_events import named_version
from consumer.core.submission import SourceObject
from consumer.errors import ObjectGone, ObjectStoreError
from consumer.ports import FetchedObject

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import TagTypeDef

RequestHook = Callable[[str, str], None]
"""Called with (operation, result) after every S3 call: `ok` or an error code."""

_GONE = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class S3Objects:
    def __init__(self, client: S3Client, hook: RequestHook) -> None:
        self._client = client
        self._hook = hook

    async def fetch(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> FetchedObject:
        where = _where(bucket, key, version_id)
        try:
            response = await self._client.get_object(**_version(bucket, key, version_id))
            size = response["ContentLength"]
            async with response["Body"] as body:
                # Too large: leave the body unread (closing drops the connection, not the bytes).
                content = await body.read() if size <= max_bytes else None
        except (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise self._failed("GetObject", where, exc) from exc
        self._hook("GetObject", "ok")
        return FetchedObject(
            size=size,
            etag=response.get("ETag", "").strip('"'),
            version_id=named_version(response.get("VersionId")) or version_id,
            content=content,
        )

    async def tags(self, source: SourceObject) -> dict[str, str]:
        where = _where(source.bucket, source.key, source.version_id)
        try:
            response = await self._client.get_object_tagging(
                **_version(source.bucket, source.key, source.version_id)
            )
        except (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise self._failed("GetObjectTagging", where, exc) from exc
        self._hook("GetObjectTagging", "ok")
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    async def put_tags(self, source: SourceObject, tags: Mapping[str, str]) -> None:
        where = _where(source.bucket, source.key, source.version_id)
        tag_set: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in tags.items()]
        try:
            await self._client.put_object_tagging(
                **_version(source.bucket, source.key, source.version_id),
                Tagging={"TagSet": tag_set},
            )
        except (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise self._failed("PutObjectTagging", where, exc) from exc
        self._hook("PutObjectTagging", "ok")

    def _failed(self, operation: str, where: str, exc: Exception) -> ObjectStoreError:
        code = _error_code(exc)
        self._hook(operation, code)
        error = ObjectGone if code in _GONE else ObjectStoreError
        return error(f"{operation} {where}: {code}: {exc}")


def _version(bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
    return {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}


def _where(bucket: str, key: str, version_id: str | None) -> str:
    return f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


@asynccontextmanager
async def open_s3(*, region: str | None, hook: RequestHook) -> AsyncIterator[S3Objects]:
    """A client for the drop folder's bucket. Endpoint and credentials come from botocore's own
    chain (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the ECS task role...)."""
    config = AioConfig(
        connect_timeout=10,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 5},
    )
    async with get_session().create_client("s3", region_name=region, config=config) as client:
        yield S3Objects(client, hook)
