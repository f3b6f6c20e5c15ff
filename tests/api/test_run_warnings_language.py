"""#14: every completed_with_warnings run says why in recent_warnings, in the request's
language (Accept-Language zh-hans or en, default settings.LANGUAGE_CODE)."""

from __future__ import annotations

import re

import pytest

from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db
CJK = re.compile(r"[\u4e00-\u9fff]")
DONE = {"current_stage": "done"}

# Each way a run ends yellow: (run counters, its items).
CASES = {
    "broken": (
        {"broken_items": 1},
        [{"access_status": "broken", "failure_class": "upstream_auth"}],
    ),
    "degraded": (
        {"degraded_items": 1},
        [{"access_status": "degraded", "failure_class": "upstream_quota"}],
    ),
    "advisory": ({}, [{"access_status": "active", "confirmation_status": "advisory"}]),
    "advisories_only": ({}, [{"access_status": "active", "has_warning": True}]),
    "counters_only": ({"warning_items": 1}, [{"access_status": "active"}]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("language", ["en", "zh-hans", None])
def test_a_yellow_run_says_why_in_the_callers_language(api, case, language):
    counters, items = CASES[case]
    run = ImportRunFactory(state="completed_with_warnings", total_items=1, **counters)
    for fields in items:
        ImportRunItemFactory(run=run, **DONE, **fields)
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = api.get(f"/api/batch-import/runs/{run.run_id}", **headers)
    assert response.status_code == 200, response.content
    lines = response.json()["recent_warnings"]
    assert lines, case
    if language == "zh-hans":
        assert all(CJK.search(line) for line in lines), lines
    else:
        assert not any(CJK.search(line) for line in lines), lines
