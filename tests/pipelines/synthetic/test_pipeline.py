"""The synthetic pipeline on an in-memory catalog, and each of its nodes as a plain function."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure
from pydantic import ValidationError

from quant_arena.market.schema import CleanOHLCVSchema
from quant_arena.pipelines.synthetic import create_pipeline
from quant_arena.pipelines.synthetic.nodes import (
    compare_synthetic_with_real,
    fit_synthetic_model,
    generate_synthetic_ohlcv,
    plot_synthetic_vs_real,
    stress_series,
)
from quant_arena.synthetic.generator import SyntheticConfig, generate_market
from quant_arena.synthetic.params import SyntheticParams

PARAMS_FILE = (
    Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_synthetic.yml"
)
OUTPUTS = (
    "synthetic_market_params",
    "synthetic_ohlcv",
    "synthetic_calibration_report",
    "synthetic_calibration_plot",
    "stress_ohlcv",
)


class _KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so tests can read intermediate outputs."""

    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def shipped_params() -> dict:
    return yaml.safe_load(PARAMS_FILE.read_text())["synthetic"]


@pytest.fixture
def params(shipped_params) -> dict:
    p = copy.deepcopy(shipped_params)
    p["n_bars"] = 3000
    return p


@pytest.fixture(scope="module")
def clean_ohlcv() -> pd.DataFrame:
    """Two "real" series (stand-ins generated with other seeds), as the clean stage would give them."""
    btc = generate_market(
        n_bars=3000, symbol="BTC/USD", start="2019-01-01", seed=101
    ).drop(columns="regime")
    eth = generate_market(
        n_bars=2000, symbol="ETH/USD", start="2019-01-01", seed=102
    ).drop(columns="regime")
    return pd.concat([btc, eth], ignore_index=True)


def _run(clean: pd.DataFrame, params: dict) -> DataCatalog:
    logging.getLogger("kedro").setLevel(logging.WARNING)
    catalog = DataCatalog(
        {
            "clean_ohlcv": MemoryDataset(clean),
            "params:synthetic": MemoryDataset(params),
            **{name: _KeptDataset() for name in OUTPUTS},
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_shipped_parameters_validate_and_match_the_library_defaults(shipped_params):
    p = SyntheticParams.model_validate(shipped_params)
    assert p.model == SyntheticConfig()  # the yml documents the library defaults
    assert {s.kind for s in p.stress.scenarios} == {
        "flash_crash",
        "low_liquidity",
        "price_gap",
    }


@pytest.mark.parametrize("calibrate", [False, True])
def test_pipeline_runs_on_an_in_memory_catalog(clean_ohlcv, params, calibrate):
    params["calibrate"] = calibrate
    params["calibration"]["symbol"] = "BTC/USD"
    catalog = _run(clean_ohlcv, params)

    syn = catalog.load("synthetic_ohlcv")
    CleanOHLCVSchema.validate(syn)
    assert len(syn) == 3000 and (syn["symbol"] == "SYN/USD").all()
    assert "regime" in syn.columns
    model = SyntheticConfig.model_validate(catalog.load("synthetic_market_params"))
    if calibrate:
        real_first_close = clean_ohlcv.loc[
            clean_ohlcv["symbol"] == "BTC/USD", "close"
        ].iloc[0]
        assert model.start_price == pytest.approx(real_first_close)
    else:
        assert model == SyntheticConfig.model_validate(params["model"])

    report = catalog.load("synthetic_calibration_report")
    assert list(report.columns) == ["statistic", "real", "synthetic", "difference"]
    assert (
        report.set_index("statistic").loc["n_bars", "real"] == 3000
    )  # the BTC/USD series
    assert isinstance(catalog.load("synthetic_calibration_plot"), Figure)

    stress = catalog.load("stress_ohlcv")
    CleanOHLCVSchema.validate(stress)
    assert {"flash_crash", "low_liquidity", "price_gap"} <= set(
        "+".join(stress["scenario"]).split("+")
    )


# ---------------------------------------------------------------------------------------------
# nodes as plain functions


def test_stress_on_the_real_series(clean_ohlcv, params):
    params["stress"] = {
        "source": "real",
        "seed": 1,
        "scenarios": [{"kind": "price_gap", "symbol": "ETH/USD"}],
    }
    stress = stress_series(generate_market(n_bars=10, seed=0), clean_ohlcv, params)
    assert set(stress["symbol"]) == {"BTC/USD", "ETH/USD"}
    assert stress.loc[stress["scenario"] != "", "symbol"].tolist() == ["ETH/USD"]


def test_same_parameters_same_outputs(clean_ohlcv, params):
    params["calibrate"] = True
    params["calibration"]["symbol"] = "BTC/USD"
    outputs = []
    for _ in range(2):
        model = fit_synthetic_model(clean_ohlcv, params)
        syn = generate_synthetic_ohlcv(model, params)
        outputs.append((model, syn, stress_series(syn, clean_ohlcv, params)))
    assert outputs[0][0] == outputs[1][0]
    pd.testing.assert_frame_equal(outputs[0][1], outputs[1][1])
    pd.testing.assert_frame_equal(outputs[0][2], outputs[1][2])


def test_nodes_as_functions(clean_ohlcv, params):
    params["calibration"]["symbol"] = "ETH/USD"
    model = fit_synthetic_model(clean_ohlcv, params)
    assert model == SyntheticConfig.model_validate(params["model"]).model_dump(
        mode="json"
    )
    syn = generate_synthetic_ohlcv(model, params)
    pd.testing.assert_frame_equal(
        syn,
        generate_market(
            **{
                k: params[k] for k in ("n_bars", "timeframe", "start", "symbol", "seed")
            },
            **params["model"],
        ),
    )
    report = compare_synthetic_with_real(clean_ohlcv, syn, params)
    assert report.set_index("statistic").loc["n_bars", "real"] == 2000  # ETH/USD
    assert isinstance(plot_synthetic_vs_real(clean_ohlcv, syn, params), Figure)
    stressed = stress_series(syn, clean_ohlcv, params)
    assert len(stressed) == len(syn) and "scenario" in stressed.columns


def test_calibrating_node_fits_the_chosen_series(clean_ohlcv, params):
    params["calibrate"] = True
    params["calibration"]["symbol"] = "ETH/USD"
    model = SyntheticConfig.model_validate(fit_synthetic_model(clean_ohlcv, params))
    eth = clean_ohlcv[clean_ohlcv["symbol"] == "ETH/USD"]
    assert model.start_price == pytest.approx(eth["close"].iloc[0])


def test_ambiguous_real_series_names_the_parameter(clean_ohlcv, params):
    params["calibrate"] = True  # two symbols in clean_ohlcv, none chosen
    with pytest.raises(
        ValueError, match="synthetic.calibration: symbol must be chosen"
    ):
        fit_synthetic_model(clean_ohlcv, params)


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"n_bars": 0}, "n_bars"),
        ({"timeframe": "one hour"}, "timeframe"),
        ({"calibrate": "maybe"}, "calibrate"),
        ({"stress": {"source": "moon"}}, "stress.source"),
        (
            {"stress": {"scenarios": [{"kind": "flash_crash", "depth": 2}]}},
            "stress.scenarios.0.flash_crash.depth",
        ),
        ({"calibration": {"window": 1}}, "calibration.window"),
        (
            {"model": {"regimes": {"a": {"min_bars": 9, "max_bars": 3}}}},
            "model.regimes.a",
        ),
        ({"seeed": 1}, "seeed"),
    ],
)
def test_bad_parameters_fail_naming_the_parameter(clean_ohlcv, params, patch, needle):
    params.update(patch)
    with pytest.raises(ValidationError, match=needle.replace(".", r"\.")):
        fit_synthetic_model(clean_ohlcv, params)
