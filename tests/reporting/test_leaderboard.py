"""The leaderboard: ranking, intervals, the verdict against buy-and-hold, Markdown and HTML."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import bootstrap_sharpe_ci, compute_metrics
from quant_arena.market.errors import DataError
from quant_arena.reporting.leaderboard import (
    LEADERBOARD_COLUMNS,
    build_leaderboard,
    leaderboard_html,
    leaderboard_markdown,
    markdown_table,
    seed_metrics,
)
from tests.reporting.conftest import PPY

STRATEGIES = {"buy_and_hold", "do_nothing", "momentum", "ppo_mlp", "sac_tcn"}


# per test (about 0.5 s each), not per module: mutmut runs against a mutant only the tests that
# called the mutated function themselves, and a module fixture calls it in the first test only
@pytest.fixture
def board(results):
    return build_leaderboard(
        results["walk_forward_oos_returns_table"],
        periods_per_year=PPY,
        summary=results["walk_forward_summary_report"],
        trades=results["walk_forward_trades_table"],
    )


@pytest.fixture
def rendered(results, board):
    kwargs = {
        "overfitting": results["walk_forward_overfitting_report"],
        "montecarlo": results["walk_forward_montecarlo_report"],
        "stress": results["walk_forward_stress_report"],
        "meta": {"Bars": "1h"},
    }
    return leaderboard_markdown(board, **kwargs), leaderboard_html(board, **kwargs)


def test_ranked_by_seed_mean_oos_sharpe(board, oos):
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert set(board["strategy"]) == STRATEGIES
    assert list(board["rank"]) == [1, 2, 3, 4, 5]
    assert board["sharpe_mean"].is_monotonic_decreasing
    # the mean over seeds of compute_metrics' Sharpe on each seed's stitched test bars
    per_seed = [
        compute_metrics(g["return"].to_numpy(), periods_per_year=PPY)["sharpe"]
        for _, g in oos[oos["strategy"] == "ppo_mlp"].groupby("seed")
    ]
    row = board.set_index("strategy").loc["ppo_mlp"]
    assert row["sharpe_mean"] == pytest.approx(np.mean(per_seed))
    assert row["sharpe_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert row["n_seeds"] == 3
    assert np.isnan(board.set_index("strategy").loc["buy_and_hold", "sharpe_std"])  # one record: no spread
    assert board.iloc[0]["strategy"] == "ppo_mlp"
    assert board.iloc[-1]["strategy"] == "sac_tcn"


def test_intervals_bracket_the_estimate_and_match_the_metrics_bootstrap(board, oos):
    b = board.set_index("strategy")
    assert (b["sharpe_ci_low"] <= b["sharpe_mean"] + 1e-9).all()
    assert (b["sharpe_ci_high"] >= b["sharpe_mean"] - 1e-9).all()
    # a one-record strategy gets exactly bootstrap_sharpe_ci's interval (same engine, same seed)
    r = oos.loc[oos["strategy"] == "momentum", "return"].to_numpy()
    ci = bootstrap_sharpe_ci(r, PPY, n=1000, seed=0)
    assert (b.loc["momentum", "sharpe_ci_low"], b.loc["momentum", "sharpe_ci_high"]) == pytest.approx((ci.low, ci.high))


def test_beats_buy_and_hold_is_judged_by_the_interval(board):
    b = board.set_index("strategy")
    assert b.loc["buy_and_hold", "beats_benchmark"] == "benchmark"
    assert np.isnan(b.loc["buy_and_hold", "sharpe_diff_ci_low"])
    for name, row in b.drop(index="buy_and_hold").iterrows():
        lo, hi = row["sharpe_diff_ci_low"], row["sharpe_diff_ci_high"]
        expected = "yes" if lo > 0 else "worse" if hi < 0 else "no"
        assert row["beats_benchmark"] == expected, name
    assert b.loc["ppo_mlp", "beats_benchmark"] == "yes"
    assert b.loc["sac_tcn", "beats_benchmark"] == "worse"


def _bh_plus(oos: pd.DataFrame, name: str, extra: np.ndarray, seeds=(0, 1)) -> pd.DataFrame:
    """buy_and_hold's record plus ``extra`` per bar, as an agent with ``seeds``."""
    bh = oos[oos["strategy"] == "buy_and_hold"]
    agent = pd.concat([bh.assign(strategy=name, kind="agent", seed=s) for s in seeds])
    agent["return"] = agent["return"].to_numpy() + np.tile(extra, len(seeds))
    return pd.concat([bh, agent], ignore_index=True)


def test_a_higher_sharpe_that_could_be_luck_does_not_beat_the_benchmark(oos):
    rng = np.random.default_rng(11)
    noise = rng.normal(0.0, 0.004, 720)
    noise += 2e-5 - noise.mean()  # a small positive edge drowned in noise
    board = build_leaderboard(_bh_plus(oos, "lucky", noise), periods_per_year=PPY).set_index("strategy")
    assert board.loc["lucky", "sharpe_mean"] > board.loc["buy_and_hold", "sharpe_mean"]  # higher point estimate...
    assert board.loc["lucky", "sharpe_diff_ci_low"] < 0 < board.loc["lucky", "sharpe_diff_ci_high"]
    assert board.loc["lucky", "beats_benchmark"] == "no"  # ...is not a win


def test_the_comparison_is_paired(oos):
    # better than buy-and-hold on EVERY bar by a hair: the two Sharpe intervals overlap almost
    # entirely, yet the paired difference's interval is above 0, so it does beat it
    board = build_leaderboard(_bh_plus(oos, "hair", np.full(720, 2e-5)), periods_per_year=PPY).set_index("strategy")
    own = (board.loc["hair", "sharpe_ci_low"], board.loc["hair", "sharpe_ci_high"])
    bench = (board.loc["buy_and_hold", "sharpe_ci_low"], board.loc["buy_and_hold", "sharpe_ci_high"])
    assert own[0] < bench[1] and bench[0] < own[1]  # overlapping intervals
    assert board.loc["hair", "sharpe_diff_ci_low"] > 0
    assert board.loc["hair", "beats_benchmark"] == "yes"


def test_dsr_comes_from_the_summary_or_is_computed(results, board):
    summary = results["walk_forward_summary_report"].set_index("strategy")
    b = board.set_index("strategy")
    assert b.loc["ppo_mlp", "dsr"] == pytest.approx(summary.loc["ppo_mlp", "dsr"])
    computed = build_leaderboard(results["walk_forward_oos_returns_table"], periods_per_year=PPY, n_boot=200).set_index("strategy")
    assert computed["dsr"].between(0, 1).all()
    assert computed.loc["ppo_mlp", "dsr"] > computed.loc["sac_tcn", "dsr"]
    assert (computed["dsr"] <= computed["psr"] + 1e-12).all()  # deflation never helps


def test_turnover_and_trades(board, results):
    b = board.set_index("strategy")
    trades = results["walk_forward_trades_table"]
    expected = trades[trades["strategy"] == "ppo_mlp"].groupby("seed").size().mean()
    assert b.loc["ppo_mlp", "n_trades_mean"] == pytest.approx(expected)
    assert b.loc["do_nothing", "n_trades_mean"] == 0
    assert b.loc["do_nothing", "turnover_annual_mean"] == 0
    assert b.loc["buy_and_hold", "turnover_annual_mean"] == pytest.approx(PPY / 720)  # one buy over 720 bars
    assert np.isnan(build_leaderboard(results["walk_forward_oos_returns_table"], periods_per_year=PPY, n_boot=200)["n_trades_mean"]).all()


def test_missing_benchmark_or_misaligned_bars_are_errors(oos):
    with pytest.raises(DataError, match="benchmark_present"):
        build_leaderboard(oos, periods_per_year=PPY, benchmark="hodl")
    shifted = oos.copy()
    mask = shifted["strategy"] == "momentum"
    shifted.loc[mask, "timestamp"] = shifted.loc[mask, "timestamp"] + pd.Timedelta(days=365)
    with pytest.raises(DataError, match="aligned_with_benchmark"):
        build_leaderboard(shifted, periods_per_year=PPY, n_boot=100)
    no_bench = build_leaderboard(oos, periods_per_year=PPY, benchmark=None, n_boot=100)
    assert set(no_bench["beats_benchmark"]) == {"n/a"}


def test_seed_metrics_one_row_per_strategy_and_seed(oos):
    m = seed_metrics(oos, PPY)
    assert len(m) == 3 + 2 * 3
    assert {"sharpe", "cagr", "max_drawdown", "turnover_annual"} <= set(m.columns)


def test_same_results_same_leaderboard(results, board, rendered):
    again = build_leaderboard(
        results["walk_forward_oos_returns_table"],
        periods_per_year=PPY,
        summary=results["walk_forward_summary_report"],
        trades=results["walk_forward_trades_table"],
    )
    pd.testing.assert_frame_equal(board, again)
    md = leaderboard_markdown(
        again,
        overfitting=results["walk_forward_overfitting_report"],
        montecarlo=results["walk_forward_montecarlo_report"],
        stress=results["walk_forward_stress_report"],
        meta={"Bars": "1h"},
    )
    assert md == rendered[0]


def test_markdown_has_every_strategy_the_verdict_and_the_extras(rendered, board):
    md, _ = rendered
    table_rows = [line for line in md.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [row.split("|")[2].strip() for row in table_rows] == list(board["strategy"])
    assert "Beats buy_and_hold?" in md and "Sharpe 95% CI" in md
    assert "| yes |" in md and "| worse |" in md and "| benchmark |" in md
    assert "## How to read this" in md
    assert "**PBO = " in md
    assert "Final return (5% worst)" in md and "Max DD (5% worst)" in md
    assert "## Stress scenarios" in md
    for name in STRATEGIES:
        assert name in md


def _external_references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//[^"'\s>]+|url\(\s*["']?(?:https?:)?//[^)]*\)|@import""", page, re.I)


def test_html_is_self_contained_and_has_every_strategy(rendered, board):
    _, page = rendered
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert _external_references(page) == []
    assert "http://" not in page and "https://" not in page
    for name in board["strategy"]:
        assert f"<td>{name}</td>" in page
    assert '<td class="yes">yes</td>' in page and '<td class="worse">worse</td>' in page
    assert "How to read this" in page and "PBO = " in page and "Monte Carlo worst cases" in page


def test_html_embeds_figures_as_data_uris(board):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 2])
    page = leaderboard_html(board, figures={"a small <figure>": fig})
    assert re.search(r'<img alt="a small &lt;figure&gt;" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">', page)
    assert _external_references(page) == []


def test_html_escapes_names_and_sections_degrade_gracefully(board):
    odd = board.assign(strategy=board["strategy"].replace({"momentum": "mom<script>|x"}))
    page = leaderboard_html(odd)
    assert "mom&lt;script&gt;|x" in page and "<script>" not in page
    assert "Not available (no overfitting report)" in page
    md = leaderboard_markdown(odd)
    assert "mom<script>\\|x" in md  # the pipe is escaped, the table keeps its columns
    assert "Not available (no Monte Carlo report)" in md


def test_markdown_table_aligns_numbers_right():
    text = markdown_table(pd.DataFrame({"name": ["a", "b"], "value": ["1.50", "-2.0%"], "ci": ["[0.1, 2.0]", "—"]}))
    assert text.splitlines()[1] == "| :--- | ---: | ---: |"


def test_extras_follow_the_walk_forward_layouts(rendered, results):
    md, _ = rendered
    pbo = results["walk_forward_overfitting_report"].set_index("statistic").loc["pbo", "value"]
    assert f"**PBO = {pbo:.2f}**" in md  # read from the long (statistic, value) layout
    # Monte Carlo: one row per strategy x method, seeds averaged; both resamplings shown
    mc_rows = [line for line in md.split("## Monte Carlo worst cases")[1].split("##")[0].splitlines() if line.startswith("| ppo_mlp")]
    assert sorted(row.split("|")[2].strip() for row in mc_rows) == ["block_bootstrap_stationary", "trade_reshuffle"]
    assert "Agents: the mean over seeds" in md
    # stress: one row per strategy x scenario (seeds averaged), rates as percentages
    stress = md.split("## Stress scenarios")[1]
    assert len([line for line in stress.splitlines() if line.startswith("| ppo_mlp")]) == 3
    assert "100.0%" in stress


def test_a_pbo_column_layout_is_read_too(board):
    md = leaderboard_markdown(board, overfitting=pd.DataFrame({"pbo": [0.25], "n_blocks": [16]}))
    assert "**PBO = 0.25**" in md


def test_a_failed_lookahead_check_is_flagged(results):
    summary = results["walk_forward_summary_report"].copy()
    summary.loc[summary["strategy"] == "momentum", "lookahead_passed"] = False
    board = build_leaderboard(results["walk_forward_oos_returns_table"], periods_per_year=PPY, summary=summary, n_boot=100)
    assert board.set_index("strategy").loc["momentum", "lookahead_check"] == "failed"
    assert board.set_index("strategy").loc["ppo_mlp", "lookahead_check"] == "passed"
    md, page = leaderboard_markdown(board), leaderboard_html(board)
    assert "momentum ⚠ look-ahead" in md and "**Warning:** momentum failed the look-ahead check" in md
    assert 'class="warning"' in page and "momentum ⚠ look-ahead" in page
    assert "Warning" not in leaderboard_markdown(build_leaderboard(results["walk_forward_oos_returns_table"], periods_per_year=PPY, n_boot=100))


def test_generic_tables_format_counts_missing_and_infinite_values(board):
    overfitting = pd.DataFrame({
        "statistic": ["pbo", "dsr_trials"], "value": [0.125, 9.0], "n_blocks": [16.0, np.nan],
        "most_chosen": ["agent|ppo|0", np.nan], "ratio": [np.inf, 1.5],
    })
    md = leaderboard_markdown(board, overfitting=overfitting)
    assert "| pbo | 0.125 | 16 | agent\\|ppo\\|0 | ∞ |" in md
    assert "| dsr_trials | 9.000 | — | — | 1.500 |" in md


def test_funding_paid_comes_from_the_summary_and_shows_only_when_a_study_charges_it(oos):
    """A perp study's leaderboard shows each strategy's funding paid (from the summary); a spot
    study's (all zero) keeps the page as it was."""
    from quant_arena.reporting.leaderboard import _display_table

    names = sorted(oos["strategy"].unique())
    summary = pd.DataFrame({"strategy": names, "funding_paid_mean": [0.0125 * (i - 1) for i in range(len(names))]})
    board = build_leaderboard(oos, periods_per_year=365.0, n_boot=50, summary=summary)
    by_name = board.set_index("strategy")["funding_paid_mean"]
    assert by_name[names[0]] == -0.0125 and by_name[names[2]] == 0.0125
    shown = _display_table(board, "buy_and_hold", 0.05)
    assert "Funding paid" in shown.columns
    paid = dict(zip(board["strategy"], shown["Funding paid"], strict=True))
    assert paid[names[0]].startswith("-1.") and paid[names[1]] in {"0.0%", "0.0 %"}
    spot = build_leaderboard(oos, periods_per_year=365.0, n_boot=50, summary=summary.assign(funding_paid_mean=0.0))
    assert "Funding paid" not in _display_table(spot, "buy_and_hold", 0.05).columns
    assert build_leaderboard(oos, periods_per_year=365.0, n_boot=50)["funding_paid_mean"].isna().all()
