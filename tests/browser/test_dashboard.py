"""The results dashboard in headless Chromium: ``python -m quant_arena.dashboard`` (Streamlit) on a
free port, against the catalog outputs of the session's tiny walk_forward study (``tiny_study``:
a real ``kedro run`` with KEDRO_ENV=ci, see tests/_tiny_study.py), shows the leaderboard table and
every section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.browser._serve import free_port, running_server
from tests.browser.conftest import chromium_or_skip


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory, tiny_study: Path):
    """The dashboard of the tiny study's project, served for the module: its URL."""
    chromium_or_skip()
    project = tiny_study
    port = free_port()
    log = Path(tmp_path_factory.mktemp("dashboard-log")) / "streamlit.log"
    cmd = [
        sys.executable,
        "-m",
        "quant_arena.dashboard",
        "--project",
        str(project),
        "--env",
        "ci",
        "--port",
        str(port),
    ]
    with running_server(
        cmd, f"http://127.0.0.1:{port}/_stcore/health", cwd=project, log=log, timeout=60
    ):
        yield f"http://127.0.0.1:{port}/"


def test_the_dashboard_shows_the_leaderboard_table_and_every_section(
    dashboard, page, screenshot
):
    page.goto(dashboard)
    table = page.wait_for_selector('[data-testid="stTable"] table', timeout=45_000)
    headers = [
        h.strip()
        for h in table.eval_on_selector_all(
            "thead th", "els => els.map(e => e.textContent)"
        )
    ]
    assert {"Rank", "Strategy", "Kind", "Sharpe (mean)", "Beats benchmark?"} <= set(
        headers
    ), headers
    cells = table.eval_on_selector_all(
        "tbody td, tbody th", "els => els.map(e => e.textContent.trim())"
    )
    assert {"ppo_mlp", "buy_and_hold", "do_nothing"} <= set(cells), cells
    for heading in (
        "Out-of-sample equity",
        "Sharpe ratio per fold",
        "Learning curves",
        "Drift status",
        "Champion / challenger",
        "Paper account",
    ):
        page.get_by_text(heading).first.wait_for()  # Streamlit draws the page top down
    # the study's charts are drawn (Vega charts), the operations sections say what to run
    page.wait_for_selector('[data-testid="stVegaLiteChart"]')
    page.get_by_text("kedro run --pipeline=paper").first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "dashboard.png")
