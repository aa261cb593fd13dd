"""Avatars: which uploads are allowed, where an upload and an avatar live in the assets bucket,
and what a processed avatar is. The API (the key-upload URL), the avatar Lambda (processing),
the template's bucket rules and the local stack all read these.

An upload goes to `uploads/avatars/<cognito_user_uuid>`, a key the API signs for the caller alone
(one key per user, whatever the file's type: a newer upload replaces an older one, so the newest
always wins however late the older one's notice comes). S3 tells the avatar Lambda, which writes
the square JPEG the frontends show at `avatars/<cognito_user_uuid>.jpg`; uploads expire with
their prefix's lifecycle rule. Only `avatars/` is ever served.
"""
from __future__ import annotations

import re

# extension (as the frontend takes it from the file's name, in any case) -> the Content-Type
# the signed URL requires: what a browser sends for such a file.
UPLOAD_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                "gif": "image/gif"}
# The formats the processing accepts, by what the file's bytes say it is (never by its name).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# A presigned PUT cannot bound the body's size (only a POST policy can), so the processing refuses
# a larger upload before reading it, and the upload expires with its prefix's lifecycle rule.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# A decompression bomb: a small file that decodes into a huge bitmap. Refused from its header,
# before a pixel is decoded (a 6,000 x 4,000 photo is 24 megapixels).
MAX_PIXELS = 25_000_000
# The avatar: a square JPEG this many pixels a side.
AVATAR_SIDE = 512
AVATAR_CONTENT_TYPE = "image/jpeg"
# How long a browser or CloudFront may keep an avatar: a new one shows within a minute, as a new name does.
AVATAR_CACHE_SECONDS = 60
# How long a key-upload URL may be used.
UPLOAD_URL_SECONDS = 300
# Uploads live this long at most (the bucket's lifecycle rule), processed or not.
UPLOAD_DAYS = 1

UPLOADS_PREFIX = "uploads/avatars/"
AVATARS_PREFIX = "avatars/"
# A Cognito sub, as the keys hold it (no slash, no dot: one key per user and no way out of the prefix).
_OWNER = re.compile(r"[0-9A-Za-z-]{1,64}")
_UPLOAD = re.compile(rf"{re.escape(UPLOADS_PREFIX)}({_OWNER.pattern})")


class AvatarRefused(ValueError):
    """An upload that cannot become an avatar (its code says why): it is deleted, never retried."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


def content_type_of(extension: object) -> str | None:
    """The Content-Type an upload with this extension must be sent with; None: not allowed."""
    if not isinstance(extension, str):
        return None
    return UPLOAD_TYPES.get(extension.strip().lstrip(".").lower())


def upload_key(owner: str) -> str:
    """Where `owner` (a Cognito sub) uploads an image, of any allowed type."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not a Cognito user uuid: {owner!r}")
    return f"{UPLOADS_PREFIX}{owner}"


def avatar_key(owner: str) -> str:
    """Where `owner`'s avatar is: the key the frontends show (avatars/<cognito_user_uuid>.jpg)."""
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"not a Cognito user uuid: {owner!r}")
    return f"{AVATARS_PREFIX}{owner}.jpg"


def owner_of_upload(key: str) -> str | None:
    """Whose upload this key is (None: not an upload key)."""
    found = _UPLOAD.fullmatch(key)
    return found.group(1) if found else None
