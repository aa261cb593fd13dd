"""Linking PostgreSQL users to Cognito identities (services/link_cognito_users.py, behind
bin/db/update-cognito-user-ids and the local stack): by verified email, never by a handle that
anyone can pick at sign-up."""
from __future__ import annotations

import uuid

import pytest

from lib.db import Db
from lib.users import UserStore
from services.link_cognito_users import LinkCognitoUsers


@pytest.fixture
def db(settings):
    made = Db(settings)
    created: list[str] = []

    def person(handle: str, email: str, sub: str | None = None) -> str:
        created.append(made.query_commit(
            "INSERT INTO public.users (display_name, handle, email, cognito_user_id) "
            "VALUES (%(h)s, %(h)s, %(e)s, %(s)s) RETURNING uuid::text", {"h": handle, "e": email, "s": sub}))
        return created[-1]

    made.person = person  # type: ignore[attr-defined]
    yield made
    made.query_commit("DELETE FROM public.users WHERE uuid = ANY(%(u)s::uuid[])", {"u": created})
    made.close()


def pool_user(email: str, preferred_username: str, verified: bool = True) -> dict[str, str]:
    return {"username": email, "sub": str(uuid.uuid4()), "email": email,
            "email_verified": "true" if verified else "false", "preferred_username": preferred_username}


def sub_of(db: Db, handle: str) -> str | None:
    return db.query_value("SELECT cognito_user_id FROM public.users WHERE handle = %(h)s", {"h": handle})


def test_a_handle_picked_at_sign_up_takes_over_nobody(db):
    """An attacker signs up with preferred_username = the victim's handle and confirms their own
    email: the victim is linked to the victim's identity, never the attacker's."""
    tag = uuid.uuid4().hex[:8]
    victim = f"victim{tag}"
    db.person(victim, f"{victim}@example.test")
    attacker = pool_user(f"attacker{tag}@example.test", preferred_username=victim)
    real = pool_user(f"{victim}@example.test", preferred_username=f"renamed{tag}")  # renamed: no crash
    report = LinkCognitoUsers.run(UserStore(db), [attacker, real])
    assert sub_of(db, victim) == real["sub"] and report.linked[victim] == real["sub"]
    assert attacker["sub"] not in report.linked.values()


def test_unverified_ambiguous_and_existing_links_are_skipped_and_said(db):
    tag = uuid.uuid4().hex[:8]
    unverified, twice, linked = (f"{n}{tag}" for n in ("unverified", "twice", "linked"))
    db.person(unverified, f"{unverified}@example.test")
    db.person(twice, f"{twice}@example.test")
    db.person(linked, f"{linked}@example.test", sub="existing-sub-" + tag)
    pool = [pool_user(f"{unverified}@example.test", unverified, verified=False),
            pool_user(f"{twice}@example.test", twice), pool_user(f"{twice}@EXAMPLE.test", "other"),
            pool_user(f"{linked}@example.test", linked)]
    report = LinkCognitoUsers.run(UserStore(db), pool)
    assert sub_of(db, unverified) is None and sub_of(db, twice) is None
    assert sub_of(db, linked) == "existing-sub-" + tag, "an existing link is never replaced silently"
    reasons = dict(report.skipped)
    assert reasons[f"{unverified}@example.test"] == "email not verified"
    assert reasons[twice].startswith("ambiguous")
    assert reasons[linked].startswith("linked to another identity")
    # asked for explicitly, it is replaced
    assert LinkCognitoUsers.run(UserStore(db), pool, replace=True).linked[linked] == pool[3]["sub"]
    assert sub_of(db, linked) == pool[3]["sub"]


def test_an_identity_is_linked_to_one_user_only(db):
    tag = uuid.uuid4().hex[:8]
    first, second = f"first{tag}", f"second{tag}"
    identity = pool_user(f"{second}@example.test", second)
    db.person(first, f"{first}@example.test", sub=identity["sub"])
    db.person(second, f"{second}@example.test")
    report = LinkCognitoUsers.run(UserStore(db), [identity])
    assert sub_of(db, second) is None
    assert dict(report.skipped)[second] == "that identity is linked to another user"
