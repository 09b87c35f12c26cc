"""conf/perp: the perpetual-futures study (walk_forward with leverage above 1 and funding on)
runs on data the project makes in freqtrade's futures layout."""

from __future__ import annotations

import yaml

from quant_arena.market.cleaning import clean_ohlcv, parse_clean_config
from quant_arena.market.ingest import load_sources
from quant_arena.study.walk_forward import WalkForwardConfig
from quant_arena.synthetic.perp import write_freqtrade_perp
from tests._project import conf_parameters

# what conf/perp/parameters_walk_forward.yml may change from conf/base's (its header lists them)
ALLOWED = {
    "symbol", "timeframe", "calendar", "folds.train", "folds.validation", "folds.test", "n_folds",
    "env.target_exposures", "env.execution", "seeds",
}  # fmt: skip


def _diff(a, b, prefix=""):
    if (
        isinstance(a, dict)
        and isinstance(b, dict)
        and prefix.rstrip(".") not in ALLOWED
    ):
        out = set()
        for k in set(a) | set(b):
            out |= _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def _yaml(project_root, env, name):
    return yaml.safe_load(
        (project_root / "conf" / env / f"parameters_{name}.yml").read_text()
    )


def test_perp_walk_forward_is_base_with_leverage_and_funding(project_root):
    # as Kedro merges it (settings.py: parameters merge key by key, lists replaced whole;
    # ${globals:...} resolved)
    base = conf_parameters("base")["walk_forward"]
    perp = conf_parameters("perp")["walk_forward"]
    assert _diff(base, perp) <= ALLOWED
    cfg = WalkForwardConfig.model_validate(perp)
    ex = perp["env"]["execution"]
    assert (
        max(abs(x) for x in perp["env"]["target_exposures"]) > 1
        and ex["max_leverage"] > 1
    )
    assert ex["use_funding_series"] is True and ex["maintenance_margin"] > 0
    assert cfg.symbol == "BTC/USDT:USDT"


def test_perp_ingest_and_clean_run_on_freqtrade_files_the_project_makes(
    project_root, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_freqtrade_perp("data/01_raw/perp", n_bars=2000)
    raw = load_sources(_yaml(project_root, "perp", "ingest")["ingest"])
    assert (
        raw["funding_rate"].notna().sum() == 2000 // 8
        and raw["mark_close"].notna().all()
    )
    res = clean_ohlcv(
        raw, parse_clean_config(_yaml(project_root, "perp", "clean")["clean"])
    )
    assert (
        res.report.set_index("rule").loc["funding_missing", "detail"] == "interval 8h"
    )
    assert res.clean["funding_rate"].notna().sum() == 2000 // 8


def test_base_clean_parameters_hold_the_perp_rules(project_root):
    cfg = parse_clean_config(_yaml(project_root, "base", "clean")["clean"])
    assert (
        cfg.funding_outliers.max_abs_rate == 0.0075
        and cfg.mark_deviation.max_rel_deviation == 0.05
    )
