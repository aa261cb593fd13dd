"""The bench's allowance for PostgreSQL reads that only the caches' expiry causes (bench/run.py)."""
from bench.run import cache_rereads_allowed
from services.names import NAMES_SECONDS


def test_a_page_of_names_may_be_read_again_once_per_expiry_of_the_names_cache():
    # 81.8 s of pattern B by one caller: the caller's user twice (60 s cache), the page's names
    # three times (30 s cache): the five queries a run on 2026-12-08 made
    assert NAMES_SECONDS == 30.0
    assert cache_rereads_allowed("B", 1, 81.8, 60.0) == 2 + 3
    assert cache_rereads_allowed("A", 2, 59.0, 60.0) == 2 * 1 + 2


def test_a_route_that_shows_no_names_is_allowed_only_its_callers_rereads():
    assert cache_rereads_allowed("U", 1, 90.2, 60.0) == 2
    assert cache_rereads_allowed("D", 16, 17.5, 60.0) == 16
