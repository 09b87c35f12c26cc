"""QuantStats tear sheets: which record, daily compounding, offline HTML, no leaked state."""

from __future__ import annotations

import logging
import re
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.market.errors import DataError
from quant_arena.reporting.tearsheets import (
    build_tearsheets,
    daily_returns,
    partition_key,
    tearsheet_index_html,
    tearsheet_series,
)
from tests.reporting.conftest import PPY
from tests.reporting.synthetic import make_walk_forward_results

#: An external ASSET (something a browser would download to render the page); plain hyperlinks
#: such as QuantStats' credit line are not assets.
EXTERNAL_ASSET = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*\b(?:src|href|data)\s*=\s*[\"']?(?:https?:)?//"
    r"|url\(\s*[\"']?(?:https?:)?//|@import",
    re.IGNORECASE,
)


def _fake_render(series, benchmark, **kwargs):
    """Records its arguments instead of drawing (QuantStats takes ~15 s per page)."""
    _fake_render.calls.append((series, benchmark, kwargs))
    return f"<html>{kwargs['strategy_name']}</html>"


def test_daily_returns_compound_within_utc_days():
    idx = pd.date_range("2022-01-01 22:00", periods=4, freq="1h", tz="Europe/Paris")  # 21:00-00:00 UTC
    r = pd.Series([0.1, -0.1, 0.05, 0.02], index=idx, name="x")
    daily = daily_returns(r)
    assert daily.index.tz is None
    assert list(daily.index) == [pd.Timestamp("2022-01-01"), pd.Timestamp("2022-01-02")]
    assert daily.iloc[0] == pytest.approx(1.1 * 0.9 * 1.05 - 1)
    assert daily.iloc[1] == pytest.approx(0.02)
    assert daily.name == "x"
    days = pd.Series([0.01, 0.02], index=pd.date_range("2022-01-01", periods=2, freq="D", tz="UTC"))
    np.testing.assert_allclose(daily_returns(days).to_numpy(), [0.01, 0.02])  # daily bars pass through


def test_the_tear_sheet_shows_the_median_seed_by_default(oos):
    series, info = tearsheet_series(oos, "ppo_mlp", periods_per_year=PPY)
    sharpes = {
        s: sharpe_ratio(g["return"].to_numpy(), PPY) for s, g in oos[oos["strategy"] == "ppo_mlp"].groupby("seed")
    }
    median = sorted(sharpes, key=sharpes.get)[1]
    assert info == {"n_seeds": 3, "seed": median, "record": f"seed {median}, the median-Sharpe seed of 3"}
    expected = oos[(oos["strategy"] == "ppo_mlp") & (oos["seed"] == median)]["return"].to_numpy()
    np.testing.assert_allclose(series.to_numpy(), expected)
    assert series.name == "ppo_mlp"
    mean, info = tearsheet_series(oos, "ppo_mlp", periods_per_year=PPY, seed_choice="mean")
    assert info["seed"] is None and "mean of 3 seeds" in info["record"]
    np.testing.assert_allclose(mean.to_numpy(), oos[oos["strategy"] == "ppo_mlp"].groupby("timestamp")["return"].mean().to_numpy())
    _, info = tearsheet_series(oos, "buy_and_hold", periods_per_year=PPY)
    assert info == {"n_seeds": 1, "seed": -1, "record": "single record"}


def test_build_tearsheets_passes_daily_tz_naive_series_against_the_benchmark(oos):
    _fake_render.calls = []
    pages, index = build_tearsheets(oos, timeframe="1h", calendar="crypto", render=_fake_render)
    assert sorted(pages) == ["buy_and_hold", "do_nothing", "momentum", "ppo_mlp", "sac_tcn"]
    assert pages["ppo_mlp"] == "<html>ppo_mlp</html>"
    by_name = {kw["strategy_name"]: (s, b, kw) for s, b, kw in _fake_render.calls}
    series, bench, kw = by_name["ppo_mlp"]
    assert kw["periods_per_year"] == 365 and kw["benchmark_name"] == "buy_and_hold"
    assert series.index.tz is None and len(series) == 30  # 720 hourly bars = 30 UTC days
    assert bench.index.equals(series.index)
    assert by_name["buy_and_hold"][1] is None  # the benchmark is not compared with itself
    assert list(index.columns) == ["strategy", "kind", "file", "record", "n_seeds", "seed", "sharpe", "days", "first_day", "last_day", "note"]
    assert index.set_index("strategy").loc["sac_tcn", "file"] == "sac_tcn.html"
    # a flat record (do_nothing) cannot be regressed on the benchmark: shown alone, and said so
    assert by_name["do_nothing"][1] is None
    assert "flat record" in index.set_index("strategy").loc["do_nothing", "note"]
    assert "flat record" in by_name["do_nothing"][2]["parameters"]["Note"]


def test_a_page_quantstats_cannot_draw_is_replaced_and_logged(oos, caplog):
    def broken(series, benchmark, **kwargs):
        if kwargs["strategy_name"] == "momentum":
            raise ValueError("boom")
        return "<html>ok</html>"

    with caplog.at_level("WARNING", logger="quant_arena.reporting.tearsheets"):
        pages, index = build_tearsheets(oos, timeframe="1h", calendar="crypto", render=broken)
    assert pages["ppo_mlp"] == "<html>ok</html>"
    assert "No tear sheet: QuantStats failed: ValueError: boom" in pages["momentum"]
    assert index.set_index("strategy").loc["momentum", "note"] == "QuantStats failed: ValueError: boom"
    assert any("momentum" in r.getMessage() for r in caplog.records)
    assert "QuantStats failed" in tearsheet_index_html(index)


def test_only_the_requested_strategies_and_unknown_ones_fail(oos):
    _fake_render.calls = []
    pages, _ = build_tearsheets(oos, timeframe="1h", calendar="crypto", strategies=["momentum"], render=_fake_render)
    assert list(pages) == ["momentum"]
    pages, index = build_tearsheets(oos, timeframe="1h", calendar="crypto", strategies=[], render=_fake_render)
    assert pages == {} and index.empty
    with pytest.raises(DataError, match="known_strategy"):
        build_tearsheets(oos, timeframe="1h", calendar="crypto", strategies=["ppo"], render=_fake_render)


def test_partition_keys_are_file_safe_and_unique():
    assert partition_key("ppo/mlp seed:3") == "ppo_mlp_seed_3"
    assert partition_key("a b", taken=["a_b"]) == "a_b_2"
    assert partition_key("../..") == "strategy"


def test_index_page_links_every_tear_sheet_relatively(oos):
    _, index = build_tearsheets(oos, timeframe="1h", calendar="crypto", render=_fake_render)
    page = tearsheet_index_html(index, link_prefix="../../tearsheets/")
    for file in index["file"]:
        assert f'href="../../tearsheets/{file}"' in page
    assert "http" not in page and "<script" not in page
    assert "No tear sheets" in tearsheet_index_html(index.iloc[:0])


@pytest.fixture(scope="module")
def real_tearsheet():
    """ONE real QuantStats page (the slow part: import + ~15 s of drawing), with everything it
    emitted while rendering."""
    results = make_walk_forward_results(n_folds=2, bars_per_fold=24 * 20, agents={"ppo_mlp": 0.2}, baselines=("buy_and_hold",))
    oos = results["walk_forward_oos_returns_table"]
    rc_before = dict(matplotlib.rcParams)
    figs_before = plt.get_fignums()
    font_log = logging.getLogger("matplotlib.font_manager")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    font_log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pages, index = build_tearsheets(oos, timeframe="1h", calendar="crypto", strategies=["ppo_mlp"])
    finally:
        logging.getLogger().removeHandler(handler)
        font_log.removeHandler(handler)
    return {
        "page": pages["ppo_mlp"],
        "index": index,
        "warnings": [str(w.message) for w in caught],
        "logs": [r.getMessage() for r in records if r.levelno >= logging.WARNING],
        "rc_changed": sorted(k for k, v in rc_before.items() if str(matplotlib.rcParams.get(k)) != str(v)),
        "new_figures": sorted(set(plt.get_fignums()) - set(figs_before)),
    }


@pytest.mark.slow
def test_real_tear_sheet_names_the_strategy_and_renders_offline(real_tearsheet):
    page = real_tearsheet["page"]
    assert "<html" in page.lower() and "ppo_mlp" in page
    assert "BUY_AND_HOLD" in page or "buy_and_hold" in page  # against the benchmark
    assert "seed" in page and "compounded per UTC day" in page  # which record, said in the header
    assert page.count("<svg") >= 10  # the charts are inline SVG
    assert EXTERNAL_ASSET.findall(page) == []
    assert "favicon" not in page and 'onload="save()"' not in page
    assert "<script" not in page.lower()


@pytest.mark.slow
def test_real_tear_sheet_is_quiet_and_leaves_no_state(real_tearsheet):
    assert real_tearsheet["warnings"] == []
    assert not [m for m in real_tearsheet["logs"] if "findfont" in m]
    assert real_tearsheet["rc_changed"] == []  # QuantStats' style did not leak into matplotlib
    assert real_tearsheet["new_figures"] == []  # its pyplot figures were closed
