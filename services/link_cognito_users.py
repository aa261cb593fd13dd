"""Link PostgreSQL users to their Cognito identities: users.cognito_user_id = the pool user's sub.

A pool user is matched by a verified email, the one attribute a person cannot simply claim:
anybody who signs up can pick any preferred_username (and so any handle), but Cognito marks an
email verified only once its owner has proved it. A match must be unique on both sides; a user
already linked to another identity is left as it is unless replacing is asked for; everything
not linked is reported with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from domain import identity
from lib.users import UserStore


@dataclass
class LinkReport:
    linked: dict[str, str] = field(default_factory=dict)     # handle -> sub, set by this run
    unchanged: dict[str, str] = field(default_factory=dict)  # handle -> sub, linked already
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (who, why)


class LinkCognitoUsers:
    @staticmethod
    def run(users: UserStore, pool_users: Iterable[dict[str, Any]], replace: bool = False) -> LinkReport:
        """Link every PostgreSQL user to the pool user with the same verified email.
        `replace`: also re-link a user linked to another identity (the local stack, whose pool is
        made anew from these very users)."""
        report = LinkReport()
        by_email: dict[str, list[dict[str, Any]]] = {}
        for user in pool_users:
            email = identity.email_key(user.get("email"))
            if not email or not user.get("sub"):
                continue
            if not identity.email_verified(user):
                report.skipped.append((user.get("username", email), "email not verified"))
                continue
            by_email.setdefault(email, []).append(user)
        for person in users.everyone():
            handle = person["handle"]
            matches = by_email.get(identity.email_key(person["email"]), [])
            if not matches:
                report.skipped.append((handle, "no pool user with this verified email"))
                continue
            if len(matches) > 1:
                report.skipped.append((handle, f"ambiguous: {len(matches)} pool users with this email"))
                continue
            sub = matches[0]["sub"]
            if person["cognito_user_id"] == sub:
                report.unchanged[handle] = sub
            elif person["cognito_user_id"] and not replace:
                report.skipped.append((handle, "linked to another identity already (not replaced)"))
            elif users.link(person["uuid"], sub, replace):
                report.linked[handle] = sub
            else:
                report.skipped.append((handle, "that identity is linked to another user"))
        return report
