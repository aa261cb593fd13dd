"""The adapters and caches the services use, built once per app from Settings."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from lib.cache import Cache
from lib.cognito_jwt_token import CognitoJwtToken
from lib.config import Settings
from lib.cursor import Cursors
from lib.db import Db
from lib.ddb import Ddb

log = logging.getLogger(__name__)


@dataclass
class Backend:
    settings: Settings
    db: Db
    ddb: Ddb
    tokens: CognitoJwtToken
    cursors: Cursors
    # Cognito sub -> user row, for a short time: users rarely change.
    users: Cache[dict[str, Any]]
    # message_group_uuid -> its two participants: fixed when the group is created, so kept for good.
    membership: Cache[tuple[str, ...]]

    @classmethod
    def from_settings(cls, settings: Settings, db: Db | None = None, ddb: Ddb | None = None) -> "Backend":
        secret = settings.cursor_secret
        if not secret:
            log.warning("CURSOR_SECRET is not set: cursors are valid only in this process")
            secret = secrets.token_hex(32)
        return cls(
            settings=settings,
            db=db or Db(settings),
            ddb=ddb or Ddb(settings),
            tokens=CognitoJwtToken(settings),
            cursors=Cursors(secret.encode()),
            users=Cache(max_size=10_000, ttl=settings.user_cache_seconds),
            membership=Cache(max_size=100_000),
        )
