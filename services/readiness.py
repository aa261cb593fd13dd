"""Whether this process can serve every route: PostgreSQL answers a query and the messages table
answers DescribeTable (no capacity units) within seconds. One check per process every few
seconds whatever the number of probes (the last answer is reused meanwhile), so a readiness
probe never calls the stores on every request."""
from __future__ import annotations

from typing import Callable

from lib.cache import Cache

Check = Callable[[], bool]


class Readiness:
    @staticmethod
    def run(postgres: Check, dynamodb: Check, last_answer: Cache[dict[str, bool]]) -> dict[str, bool]:
        """{"postgres": bool, "dynamodb": bool}: each check's answer."""
        return last_answer.get_or_load("checks", lambda: {"postgres": postgres(), "dynamodb": dynamodb()})
