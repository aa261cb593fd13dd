"""The README stays short enough to read in minutes, with the depth in docs/, and every link
between them leads somewhere: a file that exists, a heading that is there."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lib.config import ROOT


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150


def slug(heading: str) -> str:
    """The anchor a Markdown heading gets (GitHub's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        heading = re.match(r"^#{1,6} (.*)$", line)
        if heading and not fence:
            found.add(slug(heading.group(1)))
    return found


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(page: Path):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")) or "shared/CONTRACT.md" in target:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no such heading")
    assert not broken, broken


# What the project writes as it runs (.gitignore's), which a page may name before it exists.
WRITTEN_WHEN_RUN = (".local/", "bench/last.json", "bench/scale.json")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_exists(page: Path):
    """A module, script or statement named in `code` (`lib/users.py`, `tests/fast/test_routes.py`,
    `db/sql/users/short.sql`) is where the page says: pages follow the code when it moves."""
    missing = []
    for name in re.findall(r"`([\w./-]+\.(?:py|sql|yaml|yml|md|json|html))(?:::\w+)?`", page.read_text()):
        if "*" in name or name.startswith(("../", "http", "/", *WRITTEN_WHEN_RUN)) or "/" not in name:
            continue
        if not (ROOT / name).exists():
            missing.append(name)
    assert not missing, missing


def test_the_data_models_table_gives_every_part_of_the_store_and_every_rule_its_place():
    """docs/data-model.md's "its one place" table names each module of the conversation store and
    of the domain's conversation rules, and nothing that is not there."""
    text = (ROOT / "docs" / "data-model.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    named = {name for line in table for name in re.findall(r"`((?:lib|domain)/[\w/]+\.py)`", line)}
    store = {f"lib/conversations/{p.name}" for p in (ROOT / "lib" / "conversations").glob("*.py")
             if p.name not in ("__init__.py", "events.py")}  # events.py: docs/live-events.md's table
    rules = {f"domain/{name}.py" for name in ("times", "unread", "live_events", "contract")}
    assert store | rules <= named, sorted(store | rules - named)
    assert all((ROOT / name).exists() for name in named)
