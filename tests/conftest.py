from __future__ import annotations

import ipaddress
import socket

import pytest

# Simulator fixtures live beside the tests of the app they imitate, shared by the whole suite.
pytest_plugins = ["tests.fixtures_upstream", "tests.fixtures_host", "tests.fixtures_browser"]

# What a test asks for when it touches the database (pytest-django's markers and fixtures).
_DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "live_server",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that touch the database: `make test`'s PostgreSQL run, whose "
        "other tests ran already beside it on SQLite and do the same whatever the database",
    )


def uses_database(item: pytest.Item) -> bool:
    return item.get_closest_marker("django_db") is not None or not _DATABASE_FIXTURES.isdisjoint(
        getattr(item, "fixturenames", ())
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # `-m "not browser"` leaves out every test that drives Chromium
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    if not config.getoption("--database-tests-only"):
        return
    elsewhere = [item for item in items if not uses_database(item)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if uses_database(item)]


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may not reach {address!r}: loopback only")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def _loopback_only():
    """No network in tests, ever: anything beyond loopback is refused."""
    socket.socket.connect = _guarded(_real_connect)
    socket.socket.connect_ex = _guarded(_real_connect_ex)
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture
def fast_pipeline(settings):
    """Loopback simulators answer in milliseconds: allow http upstreams, keep retries and
    timeouts short."""
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    settings.RELAY_RETRY_BASE_DELAY = 0.05
    settings.RELAY_RETRY_MAX_DELAY = 0.4
    settings.RELAY_HTTP_TIMEOUT = 5.0
    settings.RELAY_HTTP_RETRIES = 1


@pytest.fixture(autouse=True, scope="session")
def _translation_catalogs():
    """Pages render in Chinese and English: compile the catalogs like `make` does."""
    from relay_project.compilemessages import compile_catalogs

    compile_catalogs()


@pytest.fixture(autouse=True, scope="session")
def _neutral_locale():
    """Commands write in the operator's locale (LC_ALL / LC_MESSAGES / LANG): the suite runs
    under a neutral one, so a developer's zh_CN shell does not change what tests read. A test
    of the locale sets its own (monkeypatch)."""
    import os

    saved = os.environ.get("LC_ALL")
    os.environ["LC_ALL"] = "C.UTF-8"
    yield
    if saved is None:
        os.environ.pop("LC_ALL", None)
    else:
        os.environ["LC_ALL"] = saved


@pytest.fixture(autouse=True)
def _default_language_per_test():
    """A request in zh-hans leaves the language active in its thread (LocaleMiddleware does
    not reset it): each test starts and ends in settings.LANGUAGE_CODE."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _nothing_a_worker_kept_between_tests():
    """A model list one test's validation read, or a capability profile or pack its probe
    saw, must not stand for the next test's items."""
    from batch_import.packs import RUN_PACKS
    from batch_import.stages.upstream_probe import RUN_PROFILES
    from batch_import.stages.validate import RECENT_LISTINGS

    RECENT_LISTINGS.clear()
    RUN_PROFILES.clear()
    RUN_PACKS.clear()


@pytest.fixture(autouse=True)
def _item_places_closed_after_each_test():
    """The worker's item places outlive a task (``batch_import.places``): a test's places and
    their database connections end with it, so the next test starts none-open and the test
    database can be dropped."""
    yield
    from batch_import.places import PLACES

    PLACES.close()


@pytest.fixture
def latest_schema_after():
    """A test that migrates backwards leaves every app at its latest migration again: moving
    one app back also unapplies the other apps' migrations that depend on it, and migrating
    that app forward alone would leave them out (later tests would miss their columns)."""
    yield
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def schema_at(latest_schema_after):
    """``schema_at(("app", "migration"))`` migrates the database there and returns the models
    as they were then (for tests of data migrations); every app is at its latest again after
    the test."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(*targets: tuple[str, str]):
        executor = MigrationExecutor(connection)
        executor.migrate(list(targets))
        return MigrationExecutor(connection).loader.project_state(list(targets)).apps

    return migrate


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the loopback servers of this process make to a client socket, in order."""
    from relay_project.loopback_http import _Connection

    writes: list[bytes] = []
    send = _Connection._send
    monkeypatch.setattr(
        _Connection, "_send", lambda self, data: writes.append(bytes(data)) or send(self, data)
    )
    return writes


@pytest.fixture
def url_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL httpx parses and checks in this process (building an ``httpx.URL`` from text,
    or a changed copy of one), in order."""
    from httpx import _urlparse, _urls

    parses: list[str] = []
    parse = _urlparse.urlparse

    def counting(url: str = "", **kwargs: str | None) -> _urlparse.ParseResult:
        parses.append(url or str(kwargs))
        return parse(url, **kwargs)

    monkeypatch.setattr(_urlparse, "urlparse", counting)
    monkeypatch.setattr(_urls, "urlparse", counting)
    return parses
