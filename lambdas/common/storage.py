"""Object storage for the landing Lambdas: a small protocol and its S3 implementation.

The S3 client is created lazily, on first use (never at import: that also escapes moto), from an
injectable ``boto3.Session``. Every botocore failure becomes a ``StorageError`` so the handler fails
the invocation and the batch is retried.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from dataforge import aws
from lambdas.common.errors import StorageError, SupersededObjectError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An opened object: its streaming body and the identity of the version that is being read."""

    body: IO[bytes]
    version: str  # the S3 version id, or the ETag (without quotes) in an unversioned bucket
    last_modified: datetime
    size: int


class ObjectStore(Protocol):
    def put(self, bucket: str, key: str, body: bytes) -> None: ...

    def put_file(self, bucket: str, key: str, body: IO[bytes], size: int) -> None: ...

    def open(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> StoredObject: ...


class _StreamingReader(io.RawIOBase):
    """A botocore streaming body as a raw stream whose read errors are ``StorageError``s."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data: bytes = self._body.read(len(buffer))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(f"reading the landed object failed: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3ObjectStore:
    """``ObjectStore`` on S3 (or the moto server through ``endpoint_url``)."""

    def __init__(
        self, session: boto3.Session | None = None, *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._region = region
        self._client: S3Client | None = None
        self._lock = threading.Lock()
        self._transfer = TransferConfig(multipart_threshold=64 * 1024 * 1024, use_threads=False)

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                self._client = aws.client("s3", session=self._session, endpoint_url=self._endpoint_url,
                                          region=self._region)
            return self._client

    def put(self, bucket: str, key: str, body: bytes) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"writing s3://{bucket}/{key} failed: {exc}") from exc

    def put_file(self, bucket: str, key: str, body: IO[bytes], size: int) -> None:
        try:
            if size < self._transfer.multipart_threshold:
                self.client.put_object(Bucket=bucket, Key=key, Body=body.read(), ContentType=CONTENT_TYPE)
            else:
                self.client.upload_fileobj(body, bucket, key, ExtraArgs={"ContentType": CONTENT_TYPE},
                                           Config=self._transfer)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"writing s3://{bucket}/{key} failed: {exc}") from exc

    def open(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> StoredObject:
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id and version_id != "null":
            args["VersionId"] = version_id
        elif etag:
            args["IfMatch"] = f'"{etag.strip(chr(34))}"'
        try:
            response = self.client.get_object(**args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412", "NoSuchKey", "NoSuchVersion"):
                raise SupersededObjectError(f"s3://{bucket}/{key} ({version_id or etag}) is gone: {code}") from exc
            raise StorageError(f"reading s3://{bucket}/{key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"reading s3://{bucket}/{key} failed: {exc}") from exc
        version = response.get("VersionId")
        if not version or version == "null":
            version = str(response.get("ETag", etag or "")).strip('"')
        return StoredObject(
            body=io.BufferedReader(_StreamingReader(response["Body"]), buffer_size=1024 * 1024),
            version=version,
            last_modified=response["LastModified"],
            size=int(response.get("ContentLength", 0)),
        )
