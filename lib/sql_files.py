"""The project's SQL: db/sql/<area>/<name>.sql, read once. Without other imports, so that a Lambda
package holding db/sql and this file reads the same statements as the API."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "db" / "sql"


@lru_cache(maxsize=None)
def template(area: str, name: str) -> str:
    """The SQL of db/sql/<area>/<name>.sql."""
    return (SQL_DIR / area / f"{name}.sql").read_text()
