"""The parts the app is built from, made once per app from Settings (Cosmic Python's bootstrap):
the adapters, the caches and the live-event hub. Routes hand each service the parts it uses,
and only those, so a service's signature says what it touches and a test can give it a fake."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from domain.cursors import Cursors
from lib import aws, cognito
from lib.activities import ActivityStore
from lib.avatars import AvatarBucket
from lib.blocks import BlockCache, BlockStore
from lib.cache import Cache
from lib.cognito_jwt_token import CognitoJwtToken
from lib.config import Settings
from lib.conversations.store import ConversationStore
from lib.db import Db
from lib.ddb import Ddb
from lib.event_listener import EventHub
from lib.event_log import EventLog
from lib.users import UserStore
from services.names import Names

log = logging.getLogger(__name__)
# How long a readiness answer is reused: probes every few seconds from several load balancers
# cost the stores one check per process in that time.
READINESS_SECONDS = 5.0


@dataclass
class Parts:
    settings: Settings
    db: Db
    # the messages table, as conversations (it holds its own caches: who takes part in a group,
    # which conversation a pair has, the table's layout version)
    conversations: ConversationStore
    users: UserStore
    # current names by user uuid, for the lists whose items copied them (services/names.py)
    names: Names
    activities: ActivityStore
    events: EventLog
    tokens: CognitoJwtToken
    cursors: Cursors
    # Cognito sub -> user row, for a short time: users rarely change.
    known_users: Cache[dict[str, Any]]
    # GetUser for a token, where the API makes the users it has never seen (the local stack);
    # None where the post-confirmation trigger makes them.
    attributes_of: Callable[[str], Mapping[str, Any]] | None
    # the table through a client that tries once and gives up within seconds, for the readiness
    # check; and that check's last answer, for a few seconds (services/readiness.py)
    table_probe: Ddb
    readiness: Cache[dict[str, bool]]
    # this process's listener for live events, and the streams it wakes
    live: EventHub
    # who blocks whom (PostgreSQL), as this process remembers it while it hears every change:
    # asked on every send
    blocks: BlockCache
    # the assets bucket's avatars, to sign upload URLs for (None: no ASSETS_BUCKET)
    avatars: AvatarBucket | None = None

    @staticmethod
    def pool_asker(settings: Settings) -> Callable[[str], Any]:
        """GetUser with a token: refused by Cognito for a disabled, deleted or signed-out user.
        One quick attempt: a request must not wait seconds on it (a failure is retried later)."""
        client = aws.client(settings, "cognito-idp", quick=True)
        return lambda token: cognito.own_attributes(client, token)

    @classmethod
    def from_settings(cls, settings: Settings, db: Db | None = None, ddb: Ddb | None = None) -> "Parts":
        secret = settings.cursor_secret
        if not secret:
            log.warning("CURSOR_SECRET is not set: cursors are valid only in this process")
            secret = secrets.token_hex(32)
        db = db or Db(settings)
        users = UserStore(db)
        attributes_of = None
        if settings.provisions_users:
            client = aws.client(settings, "cognito-idp")
            attributes_of = lambda token: cognito.own_attributes(client, token)  # noqa: E731
        return cls(
            settings=settings,
            db=db,
            conversations=ConversationStore(ddb or Ddb(settings, aws.client(settings, "dynamodb", lean=True))),
            users=users,
            names=Names(users),
            activities=ActivityStore(db),
            blocks=BlockCache(BlockStore(db), settings.connection_url),
            events=EventLog(db),
            tokens=CognitoJwtToken(settings, still_valid=cls.pool_asker(settings)),
            cursors=Cursors(secret.encode()),
            known_users=Cache(max_size=10_000, ttl=settings.user_cache_seconds),
            attributes_of=attributes_of,
            table_probe=Ddb(settings, aws.client(settings, "dynamodb", quick=True)),
            readiness=Cache(max_size=1, ttl=READINESS_SECONDS),
            live=EventHub(settings.connection_url, per_user=settings.events_streams_per_user,
                          per_process=settings.events_streams_per_process,
                          # a quarter of the pool at most reads for streams; requests keep the rest
                          reads_at_once=max(1, settings.db_pool_max // 4),
                          retry_after=int(settings.events_ping_seconds) + 1),
            avatars=(AvatarBucket(aws.client(settings, "s3"), settings.assets_bucket)
                     if settings.assets_bucket else None),
        )
