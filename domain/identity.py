"""Who may become a Cruddur user, and with which handle: the one place the rules live.

Pure rules: the users' store (lib/users.py) applies them to PostgreSQL, for the post-confirmation
Lambda (aws/lambdas/cruddur-post-confirmation.py: pre-sign-up and post-confirmation) and for the
API (where no trigger runs, as in the local stack, or where the trigger failed) alike.

The rules:
- A PostgreSQL user is created, or an existing one linked to a Cognito identity, only for an email
  the pool marks verified (`email_verified` = "true"). Cognito also confirms people whose email was
  never proven (AdminConfirmSignUp, a pre-sign-up auto-confirm, pools that verify the phone), and a
  week-5 database holds users with no identity yet: linking by an unproven email would hand such
  a user's account to whoever typed their address.
- A week-5 user without an identity yet is opened by invitation only: a self sign-up with their
  email is refused (`email_reserved`), and the operator invites them (bin/cognito/invite:
  AdminCreateUser, which mails a temporary password to that address). Otherwise anyone could make
  an unconfirmed account with their email and a password of their own; when the real person then
  confirmed it ("resend code"), their row would be linked to an account whose password the
  squatter knows.
- Linking takes a user that has no identity: of two confirmations of one email at once, the
  second finds the row linked and is refused (and logged), never overwriting the first.
- Handles are ASCII letters, digits, `_`, `.`, `-` (1 to 64), with at least one letter or digit
  (`.`, `..` and `-` would break URLs such as `/@..`), and unique regardless of case
  (`AndrewBrown` cannot sign up beside `andrewbrown`; the schema's unique index on lower(handle)
  holds it against races too).
- A display name is 1 to 64 characters on one line, with no control, format (bidi, zero-width) or
  only-invisible characters, and does not mix the look-alike scripts (domain/visible_text.py).
- A sign-up whose handle is taken, or whose email belongs to another user, is refused before the
  account exists (`check_sign_up`), so nobody is left with a confirmed Cognito account that
  Cruddur cannot use.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from domain import visible_text
# fullmatch: at least one letter or digit among the handle's characters
HANDLE = re.compile(r"(?=[_.-]*[A-Za-z0-9])[A-Za-z0-9_.-]{1,64}")
DISPLAY_NAME_MAX_LENGTH = 64


class UserConflict(Exception):
    """The handle or the email belongs to another user. `code` is handle_taken or email_taken."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class UserInvalid(Exception):
    """The attributes cannot make a user (no email, no usable handle or display name, ...)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


class EmailUnverified(Exception):
    """The pool has not verified this person's email: nothing is created or linked for them yet."""

    code = "email_unverified"


def email_verified(attributes: Mapping[str, Any]) -> bool:
    """Whether the pool marks this person's email verified: the one proof that links a Cruddur
    user to a Cognito identity (anybody can pick a handle or type an address)."""
    return attributes.get("email_verified") == "true"


def email_key(email: Any) -> str:
    """An email as two of them are compared: trimmed, in lower case (as the SQL's lower() does for
    the addresses Cognito accepts)."""
    return email.strip().lower() if isinstance(email, str) else ""


def is_handle(value: Any) -> bool:
    """A whole string of the handle's characters (fullmatch: `^...$` would let "name\\n" in)."""
    return isinstance(value, str) and HANDLE.fullmatch(value) is not None


def display_name_problem(value: Any) -> str | None:
    """Why `value` cannot be a display name (None when it can)."""
    if not isinstance(value, str):
        return "is not a string"
    if len(value.strip()) > DISPLAY_NAME_MAX_LENGTH:
        return f"is over {DISPLAY_NAME_MAX_LENGTH} characters"
    return visible_text.name_problem(value.strip())


def user_of(attributes: Mapping[str, Any], need_sub: bool = True) -> dict[str, str]:
    """The row to write, from a person's Cognito attributes: sub, email, handle, display_name."""
    wanted = {"email": attributes.get("email"), "handle": attributes.get("preferred_username"),
              "display_name": attributes.get("name") or attributes.get("preferred_username")}
    if need_sub:
        wanted["sub"] = attributes.get("sub")
    missing = [name for name, value in wanted.items() if not isinstance(value, str) or not value.strip()]
    if missing:
        raise UserInvalid(f"missing attributes: {', '.join(missing)}", code="user_invalid")
    user = {name: value.strip() for name, value in wanted.items()}
    if not is_handle(user["handle"]):
        raise UserInvalid(f"not a usable handle: {user['handle']!r} (letters, digits, _ . -, "
                          "at most 64, at least one letter or digit)", code="handle_invalid")
    problem = display_name_problem(user["display_name"])
    if problem:
        raise UserInvalid(f"the name {problem}", code="display_name_invalid")
    return user
