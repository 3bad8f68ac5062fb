"""The HTTP server's garbage collector settings: applied while a server runs, restored after the last one, and
cyclic garbage still collected without anyone calling ``gc.collect()``."""

import gc
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from conftest import make_settings
from fake_gateway import FakeGateway

from sora_mcp.collector import SERVER_THRESHOLDS, server_collection
from sora_mcp.embedded import serve_app
from sora_mcp.http import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def default_collector() -> Iterator[tuple[int, int, int]]:
    """Known thresholds and nothing frozen before the test; the process's own settings back after it."""
    saved = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


@pytest.fixture
async def gateway_url(fake: FakeGateway) -> AsyncIterator[str]:
    async with serve_app(fake.build_app()) as url:
        yield url


class Cycle:
    """An object in a reference cycle with itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_thresholds_hold_until_the_last_nested_server_ends(default_collector: tuple[int, int, int]) -> None:
    with server_collection():
        assert gc.get_threshold() == SERVER_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what the process held at start-up is out of every collection
        with server_collection():  # a second app in the same process (tests, a mounted app)
            assert gc.get_threshold() == SERVER_THRESHOLDS
        assert gc.get_threshold() == SERVER_THRESHOLDS  # the first server is still up
    assert gc.get_threshold() == default_collector
    assert gc.get_freeze_count() == 0


def test_settings_are_restored_when_the_server_fails(default_collector: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError, match="boom"), server_collection():
        raise RuntimeError("boom")
    assert gc.get_threshold() == default_collector
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_is_still_collected_under_the_server_thresholds(
    default_collector: tuple[int, int, int],
) -> None:
    """Cycles made while the server runs die by allocation pressure alone, as they would with the defaults."""
    with server_collection():
        dead = [weakref.ref(Cycle()) for _ in range(1_000)]
        assert sum(ref() is not None for ref in dead) == len(dead)  # nothing has collected them yet
        churn = [[] for _ in range(3 * SERVER_THRESHOLDS[0])]  # net allocations trigger a young collection
        del churn
        assert sum(ref() is not None for ref in dead) == 0


async def test_the_http_app_collects_with_server_thresholds_while_it_runs(
    default_collector: tuple[int, int, int], gateway_url: str
) -> None:
    assert gc.get_threshold() == default_collector
    async with serve_app(create_app(make_settings(base_url=gateway_url)), lifespan=True) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
        assert gc.get_threshold() == SERVER_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == default_collector
    assert gc.get_freeze_count() == 0
