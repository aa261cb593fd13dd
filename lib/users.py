"""The users' store: Cruddur's users in PostgreSQL (db/schema.sql), through the statements of
db/sql/users/. The identity rules it applies (who may become a user, with which handle, by which
proof) are the domain's (domain/identity.py).

Two ways in: functions over an open psycopg connection, for the post-confirmation Lambda (its own
connection: bin/aws/deploy packages this file with what it imports), and `UserStore`, over the
API's pool (lib/db.py), for the services.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import psycopg

from domain.identity import EmailUnverified, UserConflict, email_verified, user_of
from lib.sql_files import template

if TYPE_CHECKING:
    from lib.db import Db

log = logging.getLogger("cruddur.identity")
User = dict[str, Any]  # {uuid, display_name, handle}


class UserStore:
    """The users as the API reads and links them."""

    def __init__(self, db: "Db"):
        self.db = db

    def by_identity(self, cognito_user_id: str) -> User | None:
        """The user linked to this Cognito identity (its `sub`)."""
        return self.db.query_object_json(template("users", "by_cognito_user_id"),
                                         {"cognito_user_id": cognito_user_id})

    def by_handle(self, handle: str) -> User | None:
        """The user with this handle, in any case."""
        return self.db.query_object_json(template("users", "short"), {"handle": handle})

    def profile(self, handle: str) -> dict[str, Any] | None:
        """The user with this handle (in any case) as their profile shows them: uuid, handle,
        display_name, bio, cruds_count (their unexpired cruds), cognito_user_uuid."""
        return self.db.query_object_json(template("users", "profile"), {"handle": handle})

    def update_profile(self, uuid: str, display_name: str | None, bio: str | None) -> dict[str, Any] | None:
        """Set the user's display name and bio (None: left as it is): {uuid, handle, display_name,
        bio} after, or None for no such user."""
        return self.db.query_commit(template("users", "update_profile"),
                                    {"uuid": uuid, "display_name": display_name, "bio": bio})

    def names_of(self, uuids: list[str]) -> dict[str, dict[str, str]]:
        """uuid -> {uuid, display_name, handle} of the users among `uuids` (one query)."""
        rows = self.db.query_array_json(template("users", "by_uuids"), {"uuids": list(uuids)})
        return {row["uuid"]: row for row in rows}

    def everyone(self) -> list[dict[str, Any]]:
        """Every user, with email and identity, by handle (the linking script's input)."""
        return self.db.query_array_json(template("users", "list"))

    def link(self, uuid: str, cognito_user_id: str, replace: bool = False) -> bool:
        """Link a user to an identity no other user has (re-link one linked elsewhere only when
        `replace`); False when that identity is another user's."""
        return bool(self.db.query_commit(template("users", "link_cognito_user_id"),
                                         {"uuid": uuid, "cognito_user_id": cognito_user_id,
                                          "replace": replace}))

    def create(self, attributes: Mapping[str, Any]) -> str:
        """create_user over a connection of the pool."""
        with self.db.connection() as conn:
            return create_user(conn, attributes)


def _holder_of_email(conn: psycopg.Connection, user: Mapping[str, str]) -> tuple[str, str | None] | None:
    """(uuid, cognito_user_id) of the oldest user with this email, in any case."""
    row = conn.execute(template("users", "holder_of_email"), user).fetchone()
    return (row[0], row[1]) if row else None


def _handle_taken(conn: psycopg.Connection, user: Mapping[str, str]) -> bool:
    return conn.execute(template("users", "handle_taken"), user).fetchone() is not None


def _taken_handle(handle: str) -> UserConflict:
    return UserConflict("handle_taken", f"the handle {handle} is taken: choose another")


def check_sign_up(conn: psycopg.Connection, attributes: Mapping[str, Any], invited: bool = False) -> None:
    """Raise UserInvalid or UserConflict when this sign-up could not become a Cruddur user, before
    Cognito makes the account. The email of a user without an identity yet is theirs: only an
    account the operator made for it (`invited`: AdminCreateUser) may go ahead, and that person
    is linked once they sign in."""
    user = user_of(attributes, need_sub=False)
    holder = _holder_of_email(conn, user)
    if holder and holder[1] is not None:
        raise UserConflict("email_taken", f"the email {user['email']} already has a Cruddur account")
    if holder and not invited:
        raise UserConflict("email_reserved", f"the email {user['email']} belongs to a Cruddur account "
                           "from before sign-ups: it is opened by an invitation sent to that address")
    if _handle_taken(conn, user) and not (holder and _is_handle_of(conn, holder[0], user["handle"])):
        raise _taken_handle(user["handle"])


def _is_handle_of(conn: psycopg.Connection, uuid: str, handle: str) -> bool:
    """Whether `handle` is (in any case) the handle of the user `uuid`: a person claiming their
    own unlinked account under its own handle is no conflict."""
    return conn.execute(template("users", "is_handle_of"), {"uuid": uuid, "handle": handle}).fetchone() is not None


def create_user(conn: psycopg.Connection, attributes: Mapping[str, Any]) -> str:
    """The uuid of the user of these attributes, created (or linked, or found) in one transaction.
    Raises EmailUnverified before creating or linking anything for an unverified email,
    UserConflict when the handle or the email is another user's, UserInvalid for attributes that
    cannot make a user."""
    user = user_of(attributes)
    with conn.transaction():
        found = conn.execute(template("users", "uuid_of_identity"), user).fetchone()
        if found:
            return found[0]  # a replay: nothing to do
        if not email_verified(attributes):
            raise EmailUnverified(f"the email {user['email']} is not verified")
        holder = _holder_of_email(conn, user)
        if holder and holder[1] is None:
            linked = conn.execute(template("users", "link_unlinked"), {**user, "uuid": holder[0]}).fetchone()
            if linked is None:  # another confirmation of this email linked it meanwhile
                log.warning("refused to link user %s to %s: linked to another identity a moment ago",
                            holder[0], user["sub"])
                raise UserConflict("email_taken", f"the email {user['email']} was linked to another "
                                   "Cruddur account at the same moment")
            return holder[0]
        if holder:
            raise UserConflict("email_taken", f"the email {user['email']} already has a Cruddur account")
        if _handle_taken(conn, user):
            raise _taken_handle(user["handle"])
        try:
            with conn.transaction():
                row = conn.execute(template("users", "create"), user).fetchone()
        except psycopg.errors.UniqueViolation as error:  # a concurrent sign-up won the race
            raise _taken_handle(user["handle"]) from error
        return row[0]
