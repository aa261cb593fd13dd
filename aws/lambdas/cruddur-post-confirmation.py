"""cruddur-post-confirmation: Cognito's sign-up triggers, over the API's own identity rules.

One function for two of the user pool's triggers (the pool's LambdaConfig names it for both):
- pre-sign-up (PreSignUp_SignUp, PreSignUp_AdminCreateUser, PreSignUp_ExternalProvider): refuses
  a sign-up whose handle is taken (in any case), whose email already has a Cruddur account, or
  whose handle or name Cruddur cannot use, before Cognito makes the account. Cognito answers the
  sign-up with "PreSignUp failed with error <the reason>.", which the frontend's sign-up form
  shows; nothing is left behind, so the person can correct it and sign up again.
- post-confirmation (PostConfirmation_ConfirmSignUp): writes the user's row in PostgreSQL, or
  links the existing user with the same verified email. Idempotent: a replayed event (Cognito
  retries a trigger that timed out) finds the row of its `sub`. An email that is not verified
  (AdminConfirmSignUp, an auto-confirm, a pool that verifies the phone) makes or links nothing:
  the API makes the user at their first request once the email is verified. A conflict here can
  only be a race with another sign-up after the pre-sign-up check; it fails the confirmation with
  the reason (see docs/security.md for what the operator does then).

Every rule is in domain/identity.py, applied to PostgreSQL by lib/users.py: bin/aws/deploy
packages them beside this file (with what they import), and the API runs the same code.
Forgotten-password confirmations and other triggers are let through untouched. Environment:
CONNECTION_URL or CONNECTION_SECRET_ARN (a Secrets Manager secret holding the URL, read at run
time), LOG_LEVEL (INFO).
"""
from __future__ import annotations

from typing import Any

from domain.identity import EmailUnverified, UserConflict, UserInvalid  # noqa: F401 (what callers catch)
from lib import users
from lib.lambda_support import OneConnection, json_logger

log = json_logger("cruddur-post-confirmation")

PRE_SIGN_UP = ("PreSignUp_SignUp", "PreSignUp_AdminCreateUser", "PreSignUp_ExternalProvider")
POST_CONFIRMATION = "PostConfirmation_ConfirmSignUp"

# one connection per container, made on the first invocation and again when it broke
_db = OneConnection()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    source = event.get("triggerSource")
    if source not in PRE_SIGN_UP and source != POST_CONFIRMATION:
        return event
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    try:
        if source in PRE_SIGN_UP:
            # an account the operator makes (an invitation) may take a week-5 user's email
            users.check_sign_up(_db.get(), attributes, invited=source == "PreSignUp_AdminCreateUser")
            log.info("sign-up may proceed", extra={"fields": {"trigger": source}})
            return event
        uuid = users.create_user(_db.get(), attributes)
    except EmailUnverified:
        log.warning("confirmed without a verified email: no user made or linked",
                    extra={"fields": {"sub": attributes.get("sub")}})
        return event
    except (UserConflict, UserInvalid) as error:
        log.error("sign-up refused", extra={"fields": {"trigger": source, "reason": str(error),
                                                     "code": error.code, "sub": attributes.get("sub")}})
        raise
    log.info("user ready", extra={"fields": {"uuid": uuid, "sub": attributes.get("sub")}})
    return event
