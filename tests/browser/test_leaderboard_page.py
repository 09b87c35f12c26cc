"""The HTML leaderboard fits a screen, rendered in headless Chromium.

At 1400 px the page never scrolls sideways and every table of a study's page (ranking, "did it
learn?", PBO, Monte Carlo, stress) is shown whole; on a narrower window (900 px) the page still
does not scroll sideways: a table wider than the page scrolls inside its own box, with its first
column (the strategy) kept in view.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quant_arena.reporting.leaderboard import build_leaderboard, leaderboard_html
from tests.reporting.conftest import PPY
from tests.reporting.synthetic import make_walk_forward_results

TABLES_JS = """() => [...document.querySelectorAll('table.data')].map(t => {
    const box = t.parentElement, r = box.getBoundingClientRect();
    let h = box.previousElementSibling;
    while (h && h.tagName !== 'H2') h = h.previousElementSibling;
    return {section: h ? h.textContent : '', table: t.scrollWidth, box: box.clientWidth,
            left: r.left, right: r.right, overflowX: getComputedStyle(box).overflowX};
})"""


@pytest.fixture(scope="module")
def leaderboard_file(tmp_path_factory) -> Path:
    """The leaderboard page of synthetic study results (5 strategies, 3 folds, every section)."""
    results = make_walk_forward_results()
    board = build_leaderboard(
        results["walk_forward_oos_returns_table"],
        periods_per_year=PPY,
        summary=results["walk_forward_summary_report"],
        trades=results["walk_forward_trades_table"],
        n_boot=100,
    )
    page = leaderboard_html(
        board,
        overfitting=results["walk_forward_overfitting_report"],
        montecarlo=results["walk_forward_montecarlo_report"],
        stress=results["walk_forward_stress_report"],
        meta={"Bars": "1h"},
    )
    path = tmp_path_factory.mktemp("leaderboard") / "leaderboard.html"
    path.write_text(page)
    return path


def _page_width(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def test_at_1400_px_every_table_is_shown_whole_and_the_page_does_not_scroll_sideways(
    page, leaderboard_file, screenshot
):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(leaderboard_file.as_uri())
    page.wait_for_selector("table.data")
    assert _page_width(page) <= 1400
    tables = page.evaluate(TABLES_JS)
    sections = {t["section"] for t in tables}
    assert {
        "Monte Carlo worst cases",
        "Stress scenarios",
        "Probability of Backtest Overfitting",
    } <= sections
    assert any(s.startswith("Ranking") for s in sections)
    for t in tables:
        assert t["overflowX"] == "auto", t
        assert t["right"] <= 1400, t
        assert t["table"] <= t["box"], f"columns hidden at 1400 px: {t}"
    spill = page.evaluate(
        "() => [...document.querySelectorAll('table.data th')].filter(th => th.scrollWidth > th.clientWidth + 1).map(th => th.textContent)"
    )
    assert spill == [], f"headers spill out of their cells: {spill}"
    screenshot(page, "leaderboard_1400px.png")


def test_on_a_narrow_window_wide_tables_scroll_in_their_box_keeping_the_strategy_in_view(
    page, leaderboard_file
):
    page.set_viewport_size({"width": 900, "height": 900})
    page.goto(leaderboard_file.as_uri())
    page.wait_for_selector("table.data")
    assert _page_width(page) <= 900
    tables = page.evaluate(TABLES_JS)
    wide = [t for t in tables if t["table"] > t["box"]]
    assert any(t["section"].startswith("Ranking") for t in wide), (
        tables
    )  # the test has a table to scroll
    for t in tables:
        assert t["overflowX"] == "auto" and t["right"] <= 900, t
    # scroll every wide box to its right end: the strategy (or agent) cell stays inside the box
    kept = page.evaluate(
        """() => [...document.querySelectorAll('div.scroll')].filter(b => b.scrollWidth > b.clientWidth).map(b => {
            const names = [...b.querySelectorAll('thead th')].map(th => th.textContent);
            const col = Math.max(names.indexOf('Strategy'), names.indexOf('Agent'), 0);
            const cell = b.querySelectorAll('tbody tr')[0].children[col];
            b.scrollLeft = b.scrollWidth;
            const box = b.getBoundingClientRect(), r = cell.getBoundingClientRect();
            return {column: names[col], scrolled: b.scrollLeft, left: r.left, right: r.right,
                    boxLeft: box.left, boxRight: box.right, text: cell.textContent};
        })"""
    )
    assert "Strategy" in {k["column"] for k in kept}, kept
    for k in kept:
        assert k["scrolled"] > 0, k
        assert k["boxLeft"] - 1 <= k["left"] and k["right"] <= k["boxRight"] + 1, (
            f"the strategy scrolled out of view: {k}"
        )
