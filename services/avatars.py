"""The caller's avatar upload: a URL to PUT one image to, for their own key only."""
from __future__ import annotations

from typing import Any

from domain import avatars
from domain.errors import InvalidInput, MalformedRequest, NotPermitted, Unavailable
from lib.avatars import AvatarBucket
from lib.users import UserStore


class AvatarUploadUrl:
    @staticmethod
    def run(bucket: AvatarBucket | None, users: UserStore, caller: dict[str, Any], body: Any) -> dict[str, str]:
        """{"url"}: a presigned PUT to the caller's upload key (their Cognito identity's, the
        one their profile's avatar shows), for a file of the body's `extension`. The body names
        nothing else: whose key it is comes from the token alone."""
        if not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        unknown = sorted(set(body) - {"extension"})
        if unknown:  # a key, a user: never taken from the body, and refused rather than ignored
            raise InvalidInput("field_unknown", detail=f"only extension is read; not {', '.join(unknown)}")
        content_type = avatars.content_type_of(body.get("extension"))
        if content_type is None:
            raise InvalidInput("extension_invalid",
                               detail=f"an avatar is one of {', '.join(sorted(avatars.UPLOAD_TYPES))}")
        if bucket is None:
            raise Unavailable("avatars_unavailable", detail="this deployment has no assets bucket (ASSETS_BUCKET)",
                              retry_after=3600)
        profile = users.profile(caller["handle"])
        if profile is None or not profile.get("cognito_user_uuid"):
            raise NotPermitted("user_unknown", detail="no Cruddur user for this identity")
        return {"url": bucket.upload_url(profile["cognito_user_uuid"], content_type)}
