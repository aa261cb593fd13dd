"""Link PostgreSQL users to their Cognito identities: users.cognito_user_id = the pool user's sub."""
from __future__ import annotations

from typing import Any, Iterable

from lib.db import Db, template


class LinkCognitoUsers:
    @staticmethod
    def run(db: Db, pool_users: Iterable[dict[str, Any]]) -> dict[str, str]:
        """Set each user's cognito_user_id from the pool user with the same handle
        (preferred_username). Returns {handle: sub} of the pool users considered."""
        subs = {u["preferred_username"]: u["sub"] for u in pool_users
                if "preferred_username" in u and "sub" in u}
        for handle, sub in subs.items():
            db.query_commit(template("users", "update_cognito_user_id"),
                            {"handle": handle, "cognito_user_id": sub})
        return subs
