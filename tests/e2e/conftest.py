"""Browser tests: a real daphne process on the test database, Debian's Chromium."""

import os

import pytest

from tests.servers import start_daphne, stop

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # sync Playwright + ORM in one test

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
    }


@pytest.fixture(scope="session")
def app_server(django_db_setup, django_db_blocker, fake_server):
    """Serve the app with daphne on the test database and the loopback fake API."""
    process, url = start_daphne(fake_base_url=fake_server.base_url)
    yield url
    stop(process)


@pytest.fixture
def app_url(app_server, transactional_db):
    """The server's URL; data made in the test is committed so daphne sees it."""
    return app_server


@pytest.fixture(autouse=True)
def close_claude_client():
    """The suite's async fixture of that name (tests/conftest.py) cannot run beside sync
    Playwright's loop; the app here is another process, with its own client."""
    yield
