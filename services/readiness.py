"""Whether this process can serve every route: PostgreSQL answers a query and the messages table
answers DescribeTable (no capacity units) within seconds. One check per process every few
seconds whatever the number of probes (the last answer is reused meanwhile), so a readiness
probe never calls the stores on every request."""
from __future__ import annotations

from services.backend import Backend


class Readiness:
    @staticmethod
    def run(backend: Backend) -> dict[str, bool]:
        """{"postgres": bool, "dynamodb": bool}."""
        return backend.readiness.get_or_load("checks", lambda: {
            "postgres": backend.db.ping(),
            "dynamodb": backend.store_probe.table_active(),
        })
