"""Real parts: a private Redis server for the session, flushed before every test."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from devenv.private_redis import start_redis
from devenv.processes import stop

# The fixtures that start real processes, and the marker a test using one carries by itself:
# the fast lane (docs/development.md, -m "not e2e and not browser") never waits on them.
MARKED_BY_FIXTURE = {"stack": "e2e", "browser": "browser"}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, whose drop at the end cannot wait for connections that
    worker threads (database_sync_to_async) still hold: those are ended first."""
    from django.db import connection

    yield
    if connection.vendor != "postgresql":
        return
    import psycopg

    name = connection.settings_dict["NAME"]
    with django_db_blocker.unblock():
        connection.close()
    with psycopg.connect(settings.ZP_TEST_DATABASE_SERVER_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    socket_path = Path(settings.REDIS_URL.removeprefix("unix://"))
    url, process = start_redis(socket_path.parent, fsync="everysec")
    assert url == settings.REDIS_URL
    yield url
    stop(process)


@pytest.fixture(autouse=True)
def clean_redis(redis_server):
    """An empty Redis and a fresh channel layer object for every test.

    A server process has one event loop for its life; tests have one per test, and the layer
    object keeps receive state (a count, a lock, cleaner tasks) that a loop closed mid-receive
    leaves behind, after which receives in the next loop fail ("Two event loops ...").
    """
    from channels.layers import channel_layers

    from polls import caches
    from polls.redis_client import get_sync_redis

    get_sync_redis().flushall()
    channel_layers.backends.clear()
    # The process's code -> event cache: PostgreSQL never hands a rolled-back test's event id
    # out again, so a cached TEST42 of the last test is another event than this test's (a
    # rollback publishes nothing: no message drops it).
    caches.forget_all()
    yield


@pytest.fixture
def redis(redis_server):
    from polls.redis_client import get_sync_redis

    return get_sync_redis()


# The fixtures several modules share; a module that needs another event or host defines its
# own of the same name (a conftest fixture asking for ``event`` gets the module's).
@pytest.fixture
def host():
    from tests.factories import make_user

    return make_user("host-a")


@pytest.fixture
def event():
    from tests.factories import make_event

    return make_event(code="TEST42")


@pytest.fixture
def question(event):
    from tests.factories import make_open_question

    return make_open_question(event)


@pytest.fixture
def stack(tmp_path, redis_server):
    """Real Daphne and the answer writer on a private database with the demo event."""
    from tests.servers import make_stack

    stack = make_stack(tmp_path)
    stack.start_daphne()
    stack.start_writer()
    yield stack
    stack.stop()


@pytest.fixture
async def disconnect_sockets():
    """Disconnect every communicator a test opened (channels' advice), and stop the process's
    event hub, so nothing is left awaiting the channel layer when the event loop closes (left
    to the loop's own shutdown, channels_redis' receive sometimes waited out its 30 s timeout)."""
    from polls.delivery import close_event_hub
    from tests.live_helpers import disconnect_all

    yield
    await disconnect_all()
    await close_event_hub()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright (tests/browser_helpers.py), one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run the README's test command")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def close_browser_pages(request):
    """A browser test's pages close with it: a stage left open keeps animating and reconnecting
    to a stopped server (whose port another test may be given) for the rest of the module."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()
