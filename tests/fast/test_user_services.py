"""Who is calling, who may become a user, and linking users to identities: the identity rules
(domain/identity.py, domain/visible_text.py) and the services over them (services/current_user.py,
provision_user.py, link_cognito_users.py, readiness.py), over the in-memory users and tokens. The
same against PostgreSQL and the local pool: tests/stack/test_closed_doors.py and
test_link_cognito_users.py."""
from __future__ import annotations

import uuid

import pytest

from domain import identity, visible_text
from domain.errors import Conflict, NotPermitted
from lib.cache import Cache
from lib.cognito_jwt_token import TokenError
from services.current_user import CurrentUser
from services.link_cognito_users import LinkCognitoUsers
from services.provision_user import ProvisionUser
from services.readiness import Readiness


def attributes(handle: str, verified: bool = True, **changes) -> dict[str, str]:
    made = {"sub": f"sub-{uuid.uuid4().hex[:8]}", "email": f"{handle}@example.test",
            "email_verified": "true" if verified else "false", "preferred_username": handle,
            "name": handle.title()}
    return {**made, **changes}


def caller(world, authorization, attributes_of=None):
    parts = world.parts
    return CurrentUser.run(parts.tokens, parts.users, parts.known_users, authorization, attributes_of)


# -- the identity rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("handle", ["bayko", "a.b", "_x", "7", "A-B_c.9", "x" * 64])
def test_a_usable_handle(handle):
    assert identity.is_handle(handle)


@pytest.mark.parametrize("handle", ["", ".", "..", "-", "_", "._-", "a b", "é", "x" * 65, "name\n", None, 7])
def test_an_unusable_handle(handle):
    assert not identity.is_handle(handle)


@pytest.mark.parametrize("name, why", [
    ("\u202eevil", "U+202E"), ("Zero\u200bwidth", "U+200B"), ("line\nbreak", "U+000A"),
    ("\u200b\u2060", "blank"), ("\u3164", "blank"), ("x" * 65, "over 64"),
    ("\u0410ndrew Brown", "mixes Cyrillic and Latin"), ("L\u03bfndo", "mixes Greek and Latin"),
])
def test_a_display_name_that_hides_or_misleads_has_a_problem(name, why):
    assert why in identity.display_name_problem(name)


@pytest.mark.parametrize("name", ["Andrew Brown", "Андрей", "Ανδρέας", "安德鲁", "Zoë O'Brien", "x" * 64,
                                  "Васко Попов", "Αλέξης", "山田 Taro", "José Ñúñez", "Ana-María 2"])
def test_a_display_name_in_one_script_or_in_scripts_that_do_not_look_alike_is_kept(name):
    assert identity.display_name_problem(name) is None


def test_the_row_is_made_of_trimmed_attributes_and_the_name_falls_back_to_the_handle():
    user = identity.user_of({"sub": " s ", "email": " A@Example.test ", "preferred_username": " ana "})
    assert user == {"sub": "s", "email": "A@Example.test", "handle": "ana", "display_name": "ana"}


@pytest.mark.parametrize("changes, code", [
    ({"email": ""}, "user_invalid"), ({"sub": None}, "user_invalid"),
    ({"preferred_username": ".."}, "handle_invalid"), ({"name": "\u202eevil"}, "display_name_invalid"),
])
def test_attributes_that_cannot_make_a_user_are_refused_with_a_code(changes, code):
    with pytest.raises(identity.UserInvalid) as refused:
        identity.user_of(attributes("ana", **changes))
    assert refused.value.code == code


@pytest.mark.parametrize("value, verified", [("true", True), ("false", False), ("True", False), (True, False), (None, False)])
def test_only_the_pools_true_verifies_an_email(value, verified):
    assert identity.email_verified({"email_verified": value}) is verified


def test_emails_are_compared_trimmed_and_in_any_case():
    assert identity.email_key(" Ana@Example.TEST ") == identity.email_key("ana@example.test")
    assert identity.email_key(None) == ""


@pytest.mark.parametrize("text, blank", [("", True), (" \t\n", True), ("\u200b\u2060\ufeff", True),
                                         ("\u2800", True), ("a", False), ("\u200ba", False), ("🙂", False)])
def test_blank_is_what_shows_nothing(text, blank):
    assert visible_text.is_blank(text) is blank


# -- who is calling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("authorization, code", [
    (None, "token_missing"), ("", "token_missing"), ("Basic abc", "token_malformed"), ("Bearer ", "token_malformed"),
    ("Bearer not-a-token", "token_invalid"),
])
def test_a_missing_or_bad_authorization_is_refused(world, authorization, code):
    with pytest.raises(TokenError) as refused:
        caller(world, authorization)
    assert refused.value.codes == [code]


def test_the_caller_is_the_user_linked_to_the_tokens_identity(world):
    ana = world.person("ana", "Ana A")
    token = world.parts.tokens.issue("sub-ana")
    assert caller(world, f"Bearer {token}") == ana
    assert caller(world, f"bearer   {token}  ") == ana  # any case, spaces around


def test_the_caller_is_remembered_for_a_while_and_read_again_after(world):
    world.person("ana", "Ana A")
    token = world.parts.tokens.issue("sub-ana")
    caller(world, f"Bearer {token}")
    world.parts.users.rows[0]["display_name"] = "Renamed"
    assert caller(world, f"Bearer {token}")["display_name"] == "Ana A"  # cached
    world.parts.known_users.clear()
    assert caller(world, f"Bearer {token}")["display_name"] == "Renamed"


def test_a_revoked_token_loses_access_once_the_caller_is_checked_again(world):
    world.person("ana")
    token = world.parts.tokens.issue("sub-ana")
    assert caller(world, f"Bearer {token}")["handle"] == "ana"
    world.parts.tokens.revoke(token)
    with pytest.raises(TokenError) as refused:
        caller(world, f"Bearer {token}")
    assert refused.value.codes == ["token_invalid"]


def test_an_identity_without_a_user_is_user_unknown_where_the_trigger_makes_users(world):
    token = world.parts.tokens.issue("sub-nobody")
    with pytest.raises(NotPermitted) as refused:
        caller(world, f"Bearer {token}")
    assert refused.value.codes == ["user_unknown"]


def test_where_no_trigger_runs_a_new_identity_becomes_a_user(world):
    made = attributes("newbie")
    token = world.parts.tokens.issue(made["sub"])
    user = caller(world, f"Bearer {token}", attributes_of=lambda t: made)
    assert (user["handle"], user["display_name"]) == ("newbie", "Newbie")
    assert world.parts.users.by_identity(made["sub"]) == user


@pytest.mark.parametrize("case, kind, code", [
    ("unverified", NotPermitted, "user_unknown"), ("taken", Conflict, "handle_taken"),
    ("email", Conflict, "email_taken"), ("bad-name", Conflict, "display_name_invalid"),
])
def test_an_identity_that_cannot_become_a_user_is_refused(world, case, kind, code):
    world.parts.users.add("held", email="held@example.test", cognito_user_id="sub-held")
    made = {"unverified": attributes("fresh", verified=False), "taken": attributes("HELD", email="new@example.test"),
            "email": attributes("other", email="HELD@example.test"),
            "bad-name": attributes("fine", name="L\u03bfndo")}[case]
    token = world.parts.tokens.issue(made["sub"])
    with pytest.raises(kind) as refused:
        caller(world, f"Bearer {token}", attributes_of=lambda t: made)
    assert refused.value.codes == [code]
    assert world.parts.users.by_identity(made["sub"]) is None


def test_a_week5_user_is_linked_by_their_verified_email_not_made_twice(world):
    old = world.parts.users.add("bayko", email="bayko@example.test")
    made = attributes("bayko", email="Bayko@Example.test")
    assert ProvisionUser.run(lambda t: made, world.parts.users, "token", made["sub"]) == old


def test_attributes_of_another_identity_make_nobody(world):
    made = attributes("someone")
    assert ProvisionUser.run(lambda t: made, world.parts.users, "token", "sub-other") is None
    assert world.parts.users.everyone() == []


def test_a_caller_trusted_for_a_while_says_until_when(world):
    world.person("ana")
    token = world.parts.tokens.issue("sub-ana")
    parts = world.parts
    user, until = CurrentUser.for_a_while(parts.tokens, parts.users, parts.known_users, f"Bearer {token}")
    assert user["handle"] == "ana" and until == pytest.approx(parts.tokens.clock() + parts.tokens.trust_seconds, abs=5)


# -- linking users to identities -----------------------------------------------------------------------
def pool_user(email: str, username: str, verified: bool = True) -> dict[str, str]:
    return {"username": username, "sub": f"sub-{uuid.uuid4().hex[:8]}", "email": email,
            "email_verified": "true" if verified else "false"}


def test_users_are_linked_by_verified_email_only(world):
    users = world.parts.users
    users.add("victim", email="victim@example.test")
    users.add("quiet", email="quiet@example.test")
    attacker = pool_user("attacker@example.test", "victim")  # the victim's handle, their own email
    real = pool_user("VICTIM@example.test", "renamed")
    unverified = pool_user("quiet@example.test", "quiet", verified=False)
    report = LinkCognitoUsers.run(users, [attacker, real, unverified])
    assert report.linked == {"victim": real["sub"]}
    assert dict(report.skipped)["quiet"] == "no pool user with this verified email"
    assert dict(report.skipped)["quiet"] and users.by_identity(attacker["sub"]) is None


def test_ambiguous_and_existing_links_are_skipped_unless_replacing(world):
    users = world.parts.users
    users.add("twice", email="twice@example.test")
    users.add("linked", email="linked@example.test", cognito_user_id="sub-existing")
    pool = [pool_user("twice@example.test", "a"), pool_user("TWICE@example.test", "b"),
            pool_user("linked@example.test", "linked")]
    report = LinkCognitoUsers.run(users, pool)
    reasons = dict(report.skipped)
    assert reasons["twice"].startswith("ambiguous") and reasons["linked"].startswith("linked to another")
    assert users.by_identity("sub-existing")["handle"] == "linked"
    assert LinkCognitoUsers.run(users, pool, replace=True).linked == {"linked": pool[2]["sub"]}
    assert LinkCognitoUsers.run(users, pool).unchanged == {"linked": pool[2]["sub"]}


def test_an_identity_is_linked_to_one_user_only(world):
    users = world.parts.users
    taken = pool_user("second@example.test", "second")
    users.add("first", email="first@example.test", cognito_user_id=taken["sub"])
    users.add("second", email="second@example.test")
    report = LinkCognitoUsers.run(users, [taken])
    assert dict(report.skipped)["second"] == "that identity is linked to another user"


# -- readiness -------------------------------------------------------------------------------------------
def test_readiness_says_which_store_fails_and_asks_each_once_in_a_while():
    asked = []

    def postgres():
        asked.append("postgres")
        return True

    def dynamodb():
        asked.append("dynamodb")
        return False

    last = Cache(max_size=1, ttl=60.0)
    assert Readiness.run(postgres, dynamodb, last) == {"postgres": True, "dynamodb": False}
    assert Readiness.run(postgres, dynamodb, last) == {"postgres": True, "dynamodb": False}
    assert asked == ["postgres", "dynamodb"], "the second probe is answered from the last check"
