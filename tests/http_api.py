"""Talking to the API as a client does, for the tests that run it through HTTP (a real gunicorn
server over the local stack: the `api` fixture): users with tokens from the local Cognito pool,
requests, and checks of answers against openapi.yml."""
from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import requests
import yaml
from openapi_schema_validator import OAS30Validator

from lib import aws, config
from lib.config import Settings
from devstack import LocalSettings


SPEC = yaml.safe_load((config.ROOT / "openapi.yml").read_text())
ERROR_CODES = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"])
PASSWORD = LocalSettings().seed_password


@dataclass
class User:
    uuid: str
    handle: str
    display_name: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def check(response: requests.Response) -> requests.Response:
    """What holds for every response: no 5xx, and every 4xx body a JSON array of known codes."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, list) and body, body
        assert all(isinstance(code, str) for code in body), body
        assert set(body) <= ERROR_CODES, body
    return response


def request(api, method: str, path: str, user: User | None = None, *,
            headers: dict[str, str] | None = None, session: requests.Session | None = None,
            **kwargs) -> requests.Response:
    sent = {**(user.auth if user else {}), **(headers or {})}
    url = path if path.startswith("http") else api.url + path
    response = (session or api.session).request(method, url, headers=sent, timeout=10, **kwargs)
    return check(response)


def get(api, path: str, user: User | None = None, **kwargs) -> requests.Response:
    return request(api, "GET", path, user, **kwargs)


def post(api, path: str, user: User | None = None, **kwargs) -> requests.Response:
    return request(api, "POST", path, user, **kwargs)


def send(api, user: User, message: str, *, to: User | None = None, group: str | None = None,
         key: str | None = None) -> dict[str, Any]:
    """Pattern C (to=) or D (group=), asserting success."""
    body = {"message": message, **({"handle": to.handle} if to else {}),
            **({"message_group_uuid": group} if group else {})}
    headers = {"Idempotency-Key": key} if key else {}
    response = post(api, "/api/messages", user, json=body, headers=headers)
    assert response.status_code == 200, response.text
    conforms(response.json(), "CreatedMessage")
    # by handle (C) the reply names the conversation; into one (D) it does not: the frontend
    # appends such a message, and reloads the page on one that names it
    assert ("message_group_uuid" in response.json()) == (to is not None), response.json()
    return response.json()


def messages(api, user: User, group: str, limit: int = 100) -> list[dict[str, Any]]:
    response = get(api, f"/api/messages/{group}?limit={limit}", user)
    assert response.status_code == 200, response.text
    conforms(response.json(), "Message", array=True)
    return response.json()


def groups(api, user: User, limit: int = 100) -> list[dict[str, Any]]:
    response = get(api, f"/api/message_groups?limit={limit}", user)
    assert response.status_code == 200, response.text
    conforms(response.json(), "MessageGroup", array=True)
    return response.json()


def conforms(body: Any, schema_name: str, array: bool = False) -> None:
    """The body matches the spec's schema (the contract's fields, uuids, +00:00 times)."""
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"components": SPEC["components"], **({"type": "array", "items": ref} if array else ref)}
    OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(body)


def error(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()) == (status, [code]), response.text


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in ("dynamodb_calls", "pg_queries", "jwks_fetches")}


def b64url(data: bytes | dict | list) -> str:
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Users:
    """Makes fresh users in PostgreSQL and the local Cognito pool, with access tokens."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.cognito = aws.client(settings, "cognito-idp")
        self.pool_id = settings.cognito_user_pool_id
        self.client_id = settings.cognito_client_id
        self.pg = psycopg.connect(settings.connection_url, autocommit=True)
        self.lock = threading.Lock()

    def cognito_user(self, handle: str, verified: bool = True) -> tuple[str, str]:
        """A user of the pool (no PostgreSQL row): (email, sub)."""
        email = f"{handle}@example.test"
        created = self.cognito.admin_create_user(
            UserPoolId=self.pool_id, Username=email, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "email_verified", "Value": "true" if verified else "false"},
                            {"Name": "name", "Value": f"Test {handle}"},
                            {"Name": "preferred_username", "Value": handle}])
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=email,
                                             Password=PASSWORD, Permanent=True)
        return email, {a["Name"]: a["Value"] for a in created["User"]["Attributes"]}["sub"]

    def sign_in(self, email: str, client_id: str | None = None) -> dict[str, str]:
        result = self.cognito.initiate_auth(ClientId=client_id or self.client_id,
                                            AuthFlow="USER_PASSWORD_AUTH",
                                            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD})
        return result["AuthenticationResult"]

    def make(self, prefix: str = "u") -> User:
        handle = f"{prefix}{uuid.uuid4().hex[:10]}"
        email, sub = self.cognito_user(handle)
        with self.lock:
            row = self.pg.execute(
                "INSERT INTO public.users (display_name, handle, email, cognito_user_id) "
                "VALUES (%s, %s, %s, %s) RETURNING uuid::text",
                [f"Test {handle}", handle, email, sub]).fetchone()
        return User(row[0], handle, f"Test {handle}", email, self.sign_in(email)["AccessToken"])

    def seeded(self, api, handle: str) -> User:
        row = self.pg.execute("SELECT uuid::text, display_name, email FROM public.users "
                              "WHERE handle = %s", [handle]).fetchone()
        return User(row[0], handle, row[1], row[2], api.tokens[handle])

    def close(self) -> None:
        self.pg.close()

def link_of(response: requests.Response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    assert link.startswith("<") and link.endswith('>; rel="next"'), link
    return link[1:link.index(">")]


def cursor_of(url: str) -> str:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(url).query)["cursor"][0]
