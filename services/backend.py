"""The adapters and caches the services use, built once per app from Settings."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from lib import aws, cognito
from lib.cache import Cache
from lib.cognito_jwt_token import CognitoJwtToken
from lib.config import Settings
from lib.conversations import ConversationStore
from lib.cursor import Cursors
from lib.db import Db
from lib.ddb import Ddb
from lib.event_listener import EventHub

log = logging.getLogger(__name__)
# How long a readiness answer is reused: probes every few seconds from several load balancers
# cost the stores one check per process in that time.
READINESS_SECONDS = 5.0


@dataclass
class Backend:
    settings: Settings
    db: Db
    # the messages table, as conversations (it holds its own caches: who takes part in a group,
    # which conversation a pair has, the table's layout version)
    conversations: ConversationStore
    tokens: CognitoJwtToken
    cursors: Cursors
    # Cognito sub -> user row, for a short time: users rarely change.
    users: Cache[dict[str, Any]]
    # the table through a client that tries once and gives up within seconds, for the readiness
    # check; and that check's last answer, for a few seconds (services/readiness.py)
    store_probe: Ddb
    readiness: Cache[dict[str, bool]]
    # this process's listener for live events, and the streams it wakes
    live: EventHub

    @staticmethod
    def pool_asker(settings: Settings) -> Callable[[str], Any]:
        """GetUser with a token: refused by Cognito for a disabled, deleted or signed-out user.
        One quick attempt: a request must not wait seconds on it (a failure is retried later)."""
        client = aws.client(settings, "cognito-idp", quick=True)
        return lambda token: cognito.own_attributes(client, token)

    @classmethod
    def from_settings(cls, settings: Settings, db: Db | None = None, ddb: Ddb | None = None) -> "Backend":
        secret = settings.cursor_secret
        if not secret:
            log.warning("CURSOR_SECRET is not set: cursors are valid only in this process")
            secret = secrets.token_hex(32)
        return cls(
            settings=settings,
            db=db or Db(settings),
            conversations=ConversationStore(ddb or Ddb(settings, aws.client(settings, "dynamodb", lean=True))),
            tokens=CognitoJwtToken(settings, still_valid=cls.pool_asker(settings)),
            cursors=Cursors(secret.encode()),
            users=Cache(max_size=10_000, ttl=settings.user_cache_seconds),
            store_probe=Ddb(settings, aws.client(settings, "dynamodb", quick=True)),
            readiness=Cache(max_size=1, ttl=READINESS_SECONDS),
            live=EventHub(settings.connection_url, per_user=settings.events_streams_per_user,
                          per_process=settings.events_streams_per_process,
                          # a quarter of the pool at most reads for streams; requests keep the rest
                          reads_at_once=max(1, settings.db_pool_max // 4),
                          retry_after=int(settings.events_ping_seconds) + 1),
        )
