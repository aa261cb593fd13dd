"""The avatars in the assets bucket (S3): the signed URL an upload goes to, and an upload made
into its owner's avatar. The rules are domain/avatars.py's; the imaging (lib/images.py, Pillow) is
handed in by the avatar Lambda, so that the API, which only signs URLs, never loads Pillow."""
from __future__ import annotations

import logging
from typing import Any, Callable

from botocore.exceptions import ClientError

from domain.avatars import (AVATAR_CACHE_SECONDS, AVATAR_CONTENT_TYPE, MAX_UPLOAD_BYTES, UPLOAD_URL_SECONDS,
                            AvatarRefused, avatar_key, owner_of_upload, upload_key)

log = logging.getLogger(__name__)
# Newer uploads that land while one is processed make it start again; past this many rounds the
# notice is given back to the queue (it is retried later, when the uploads have settled).
MAX_ROUNDS = 3


class AvatarBucket:
    """The assets bucket's avatars, through an S3 client."""

    def __init__(self, s3: Any, bucket: str):
        self.s3 = s3
        self.bucket = bucket

    def upload_url(self, owner: str, content_type: str) -> str:
        """A URL that lets its holder PUT one file, of `content_type`, to `owner`'s upload key
        for UPLOAD_URL_SECONDS. It is signed here, without a call to S3: the key and the
        Content-Type are in the signature, so S3 refuses the URL for any other key or type."""
        return self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": upload_key(owner), "ContentType": content_type},
            ExpiresIn=UPLOAD_URL_SECONDS)

    def process(self, key: str, make: Callable[[bytes], bytes]) -> str | None:
        """Make the upload at `key` its owner's avatar (`make`: an upload's bytes -> the avatar's
        JPEG, or AvatarRefused): the avatar's key, or None when there is
        nothing to do (not an upload key; the upload expired). AvatarRefused when the upload
        cannot be an avatar (nothing is written). Errors of S3 propagate, to be retried.

        Notices come at least once, late and in any order, and one user's uploads share one key,
        so whatever notice is processed reads the newest upload. Two processings at once could
        still end with the older image written last; so after writing, the upload is looked at
        again, and if a newer one landed meanwhile the work is done again with it."""
        owner = owner_of_upload(key)
        if owner is None:
            log.info("not an avatar upload, left alone: %s", key)
            return None
        for _ in range(MAX_ROUNDS):
            upload = self._read(key)
            if upload is None:
                return None
            etag, data = upload
            self.s3.put_object(Bucket=self.bucket, Key=avatar_key(owner), Body=make(data),
                               ContentType=AVATAR_CONTENT_TYPE, CacheControl=f"max-age={AVATAR_CACHE_SECONDS}")
            if self._etag(key) in (etag, None):
                return avatar_key(owner)
        raise RuntimeError(f"{key} kept changing while it was processed: retried later")

    def _read(self, key: str) -> tuple[str, bytes] | None:
        """(ETag, bytes) of the upload; None when it is gone. AvatarRefused when it is too large
        (found from its length, before its body is read)."""
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _gone(error):
                return None
            raise
        with got["Body"] as body:
            if got["ContentLength"] > MAX_UPLOAD_BYTES:
                raise AvatarRefused("upload_too_large", f"{got['ContentLength']:,} bytes: an avatar is made "
                                                        f"of at most {MAX_UPLOAD_BYTES:,}")
            return got["ETag"], body.read(MAX_UPLOAD_BYTES + 1)

    def _etag(self, key: str) -> str | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)["ETag"]
        except ClientError as error:
            if _gone(error):
                return None
            raise


def _gone(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")
