"""`make test`'s PostgreSQL run passes ``--database-tests-only``: the tests that never touch the
database ran already in the SQLite run beside it, and would do the same again."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.fixture
def live_server():
    return None

@pytest.mark.django_db
def test_marked():
    pass

def test_through_a_fixture(live_server):
    pass

def test_pure():
    pass
"""


@pytest.fixture
def split_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(
        "from tests.conftest import pytest_addoption, pytest_collection_modifyitems\n"
    )
    pytester.makepyfile(test_split=TESTS)
    return pytester


@pytest.mark.parametrize(
    ("options", "ran"),
    [
        ((), {"test_marked", "test_through_a_fixture", "test_pure"}),
        (("--database-tests-only",), {"test_marked", "test_through_a_fixture"}),
    ],
)
def test_the_postgresql_run_leaves_out_what_never_touches_the_database(split_suite, options, ran):
    result = split_suite.runpytest_inprocess("-p", "no:django", "-p", "no:cacheprovider", *options)
    passed = {
        report.nodeid.split("::")[-1]
        for report in result.reprec.getreports("pytest_runtest_logreport")
        if report.when == "call" and report.passed
    }
    assert passed == ran
    result.assert_outcomes(passed=len(ran), deselected=3 - len(ran))


def test_a_test_that_drives_chromium_is_marked_browser(pytester: pytest.Pytester):
    pytester.makeconftest(
        "from tests.conftest import pytest_addoption, pytest_collection_modifyitems\n"
        "import pytest\n"
        "@pytest.fixture\n"
        "def browser():\n"
        "    return None\n"
    )
    pytester.makepyfile(
        test_marks="def test_in_chromium(browser):\n    pass\n\ndef test_elsewhere():\n    pass\n"
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:django", "-p", "no:cacheprovider", "-m", "not browser"
    )
    result.assert_outcomes(passed=1, deselected=1)
