"""cruddur-post-confirmation: creates a Cruddur user when its Cognito sign-up is confirmed.

A Cognito post-confirmation trigger (PostConfirmation_ConfirmSignUp). It writes the user's row in
PostgreSQL from the event's attributes: display name (`name`), handle (`preferred_username`),
email, and cognito_user_id = `sub`, with psycopg 3 and parameters only.

- Idempotent: a replayed event (Cognito retries a trigger that timed out) finds the row of its
  `sub` and changes nothing.
- A user already in PostgreSQL without an identity, with the same email (a seeded user, or one
  from before Cognito), is linked to this identity: the confirmation proved the email is theirs.
- A handle or an email that another user holds is a clear failure, raised as UserConflict with
  what is taken (Cognito then refuses the confirmation with that message), never a silent
  `print`.

Forgotten-password confirmations also fire this trigger; they are let through untouched.

The API runs the same `create_user` for users who signed up where no trigger runs (moto's
Cognito), so there is one piece of code for both. Environment: CONNECTION_URL, LOG_LEVEL (INFO).
This file ships alone, with psycopg[binary] beside it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any, Mapping

import psycopg

log = logging.getLogger("cruddur-post-confirmation")
if not log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(_handler)
    log.propagate = False
log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())

# As the API accepts handles (services/validation.py).
HANDLE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class UserConflict(Exception):
    """The handle or the email belongs to another user. `code` is handle_taken or email_taken."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class UserInvalid(Exception):
    """The attributes cannot make a user (no email, no handle, ...)."""

    code = "user_invalid"


def user_of(attributes: Mapping[str, Any]) -> dict[str, str]:
    """The row to write, from a user's Cognito attributes."""
    wanted = {"sub": attributes.get("sub"), "email": attributes.get("email"),
              "handle": attributes.get("preferred_username"),
              "display_name": attributes.get("name") or attributes.get("preferred_username")}
    missing = [name for name, value in wanted.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise UserInvalid(f"missing attributes: {', '.join(missing)}")
    user = {name: value.strip() for name, value in wanted.items()}
    if not HANDLE.fullmatch(user["handle"]):
        raise UserInvalid(f"not a usable handle: {user['handle']!r}")
    return user


def create_user(conn: psycopg.Connection, attributes: Mapping[str, Any]) -> str:
    """The uuid of the user of these attributes, created (or linked, or found) in one transaction.
    Raises UserConflict when the handle or the email is another user's."""
    user = user_of(attributes)
    with conn.transaction():
        found = conn.execute("SELECT uuid::text FROM public.users WHERE cognito_user_id = %(sub)s",
                             user).fetchone()
        if found:
            return found[0]  # a replay: nothing to do
        by_email = conn.execute(
            "SELECT uuid::text, cognito_user_id FROM public.users WHERE lower(email) = lower(%(email)s) "
            "ORDER BY created_at LIMIT 1", user).fetchone()
        if by_email and by_email[1] is None:
            conn.execute("UPDATE public.users SET cognito_user_id = %(sub)s WHERE uuid = %(uuid)s",
                         {**user, "uuid": by_email[0]})
            return by_email[0]
        if by_email:
            raise UserConflict("email_taken", f"the email {user['email']} is another user's")
        if conn.execute("SELECT 1 FROM public.users WHERE handle = %(handle)s", user).fetchone():
            raise UserConflict("handle_taken", f"the handle {user['handle']} is taken")
        try:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO public.users (display_name, handle, email, cognito_user_id) "
                    "VALUES (%(display_name)s, %(handle)s, %(email)s, %(sub)s) RETURNING uuid::text",
                    user).fetchone()
        except psycopg.errors.UniqueViolation as error:  # a concurrent sign-up won the race
            raise UserConflict("handle_taken", f"the handle {user['handle']} is taken") from error
        return row[0]


_conn: psycopg.Connection | None = None


def _connection() -> psycopg.Connection:
    """One connection per container, made on the first invocation and again when it broke."""
    global _conn
    if _conn is None or _conn.closed or _conn.broken:
        _conn = psycopg.connect(os.environ["CONNECTION_URL"], connect_timeout=5, autocommit=True)
    return _conn


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("triggerSource") != "PostConfirmation_ConfirmSignUp":
        return event
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    try:
        uuid = create_user(_connection(), attributes)
    except (UserConflict, UserInvalid) as error:
        log.error(json.dumps({"message": "sign-up refused", "reason": str(error),
                              "code": error.code, "sub": attributes.get("sub")}))
        raise
    log.info(json.dumps({"message": "user ready", "uuid": uuid, "sub": attributes.get("sub")}))
    return event
