"""The CI skip policy (tests/_ci_policy.py): under QUANT_ARENA_CI=1 a skip fails unless listed."""

from __future__ import annotations

import pytest

from tests import _ci_policy

pytest_plugins = ["pytester"]

INNER = """
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("no server here")

@pytest.mark.skipif(True, reason="marker skip")
def test_marked():
    assert True

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
"""


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ci: bool,
    allowed: dict[str, str] | None = None,
):
    if ci:
        monkeypatch.setenv("QUANT_ARENA_CI", "1")
    else:
        monkeypatch.delenv("QUANT_ARENA_CI", raising=False)
    monkeypatch.setattr(_ci_policy, "CI_MAY_SKIP", allowed or {})
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_inprocess(
        "-p", "tests._ci_policy", "-p", "no:cacheprovider"
    )


def test_outside_ci_a_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, ci=False)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)


def test_in_ci_every_skip_fails_naming_the_test_and_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, ci=True)
    # A skip in the test body becomes a failure; a skip marker (decided at setup) an error.
    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*test_inner.py::test_skips skipped under .ci/run*no server here*"]
    )
    result.stdout.fnmatch_lines(
        ["*test_inner.py::test_marked skipped under .ci/run*marker skip*"]
    )


def test_in_ci_a_listed_test_may_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(
        pytester,
        monkeypatch,
        ci=True,
        allowed={"test_inner.py::test_skips": "documented reason"},
    )
    result.assert_outcomes(passed=1, errors=1, skipped=1, xfailed=1)


def test_the_allowed_list_is_short_and_every_entry_gives_a_reason() -> None:
    assert len(_ci_policy.CI_MAY_SKIP) <= 5
    assert all(len(why.strip()) > 10 for why in _ci_policy.CI_MAY_SKIP.values())
