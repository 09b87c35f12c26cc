"""Under ``.ci/run`` (``QUANT_ARENA_CI=1``) a skipped test is a failed test.

A test that skips in CI proves nothing while the run stays green: a missing service, package or
data file would hide a whole area. Here a skip under ``QUANT_ARENA_CI=1`` is turned into a
failure naming the test and its skip reason, unless the test is on ``CI_MAY_SKIP`` below, a
short list where each entry says why skipping in CI is right. Expected failures (``xfail``) are
not skips and are left alone. On a developer's machine (no ``QUANT_ARENA_CI``) skips stay skips,
each with its reason.

Loaded for the whole suite by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import os

import pytest

# node id (or a prefix of it, e.g. a file) -> why it may skip under .ci/run. Keep it short.
# Empty today: CI installs every extra (TA-Lib, psycopg2, quantstats), ships ../shared beside
# the clone and starts PostgreSQL, so nothing in the suite has a reason to skip there.
CI_MAY_SKIP: dict[str, str] = {}


def _in_ci() -> bool:
    return os.environ.get("QUANT_ARENA_CI") == "1"


def _allowed(nodeid: str, allowed: dict[str, str]) -> bool:
    return any(
        nodeid == key or nodeid.startswith(key + "::") or nodeid.startswith(key + "[")
        for key in allowed
    )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ARG001
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (_in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    if _allowed(item.nodeid, CI_MAY_SKIP):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} skipped under .ci/run (QUANT_ARENA_CI=1): {_skip_reason(report)}\n"
        "A test that skips in CI is a failure: provide what it needs in .ci/run, or add it to "
        "CI_MAY_SKIP in tests/_ci_policy.py with the reason."
    )
