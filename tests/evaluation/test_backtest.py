"""The backtest runner: one kernel for targets, batches and agents; trades; look-ahead check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_arena.envs import TradingEnv
from quant_arena.evaluation.backtest import (
    LEDGER_COLUMNS,
    evaluate_strategies,
    lookahead_check,
    run_policy,
    run_targets,
    run_targets_batch,
)
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.market.errors import DataError
from quant_arena.sim import Account, ExecutionConfig, MarketData
from quant_arena.sim import compiled as J
from quant_arena.sim.kernel import LEDGER_FIELDS
from tests._markets import bars, market, sim_market
from tests.evaluation._reference_backtest import (
    reference_run_targets,
    reference_run_targets_batch,
)

COSTLY = ExecutionConfig(
    taker_fee=0.001, spread_bps=3.0, slippage_bps=1.0, impact_coef=0.1, participation_cap=0.5,
    max_leverage=3.0, liquidation_fee=0.01, borrow_rate_short=1e-5, borrow_rate_leverage=1e-5,
)


def _targets(rng: np.random.Generator, n: int, k: int, p: float = 0.2, levels=(-3.0, -1.5, -0.5, 0.0, 1.0, 2.5, 3.0)) -> np.ndarray:
    return np.where(rng.random((n, k)) < p, rng.choice(levels, (n, k)), np.nan)


def _same(a, b) -> None:
    for k in LEDGER_COLUMNS:
        np.testing.assert_array_equal(a.columns[k], b.columns[k], err_msg=k)
    for k in ("returns", "equity", "positions", "turnover", "bars"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    pd.testing.assert_frame_equal(a.trades, b.trades)
    assert (a.n_orders, a.n_unfilled, a.stop, a.stop_index) == (b.n_orders, b.n_unfilled, b.stop, b.stop_index)


# --------------------------------------------------------------------------- run_targets


def test_run_targets_is_the_account_kernel_stepped_by_hand():
    rng = np.random.default_rng(3)
    data = sim_market(rng, 800, jumps=False)
    cfg = ExecutionConfig(taker_fee=0.001, spread_bps=2.0, max_leverage=2.0)
    tg = _targets(rng, len(data), 1, levels=(-2.0, -1.0, 0.0, 0.5, 2.0))[:, 0]
    res = run_targets(data, tg, cfg, start=5, end=700)
    acc = Account(data, cfg)
    acc.reset(5)
    last = 0.0
    eq = []
    for t in range(5, 699):
        x = tg[t]
        order = math.nan
        if not math.isnan(x) and (math.isnan(last) or x != last):
            order = last = float(x)
        acc.step(order)
        if acc.liquidated:
            last = 0.0
        elif acc.dropped:
            last = math.nan
        eq.append(acc.equity)
        if acc.liquidated or acc.equity <= 0:
            break
    assert len(res) == 694 and res.bars[0] == 6 and res.bars[-1] == 699
    np.testing.assert_array_equal(res.equity[: len(eq)], eq)
    # the ledger components sum to the equity change, bar by bar
    led = res.ledger
    prev = np.r_[1.0, res.equity[:-1]]
    np.testing.assert_allclose(led[list(LEDGER_FIELDS)].sum(axis=1), res.equity - prev, atol=1e-12)
    np.testing.assert_allclose(res.returns, res.equity / prev - 1.0)


def test_order_decided_at_close_fills_next_open_and_is_held():
    # a target decided on bar 2's close fills at bar 3's open, not at bar 2's close
    data = bars([100, 100, 100, 110, 121, 121], [100, 100, 105, 115, 121, 121])
    tg = np.full(6, np.nan)
    tg[2] = 1.0
    res = run_targets(data, tg, ExecutionConfig(), start=0)
    assert res.columns["filled"][res.bars == 3][0] == pytest.approx(1.0 / 110)
    assert (res.columns["filled"][res.bars != 3] == 0).all()
    np.testing.assert_allclose(res.positions, [0, 0, 1, 1, 1])
    np.testing.assert_allclose(res.equity, [1, 1, 115 / 110, 121 / 110, 121 / 110])
    assert len(res.trades) == 1
    tr = res.trades.iloc[0]
    assert (tr.entry_index, tr.exit_index, bool(tr.open)) == (2, 4, True)
    assert tr.pnl == pytest.approx(121 / 110 - 1)


def test_fill_delay_two_fills_two_bars_later():
    data = bars([100] * 8, [100] * 8)
    tg = np.full(8, np.nan)
    tg[1] = 1.0
    res = run_targets(data, tg, ExecutionConfig(fill_delay=2))
    assert res.bars[np.flatnonzero(res.columns["filled"])].tolist() == [3]


def test_constant_target_is_bought_once_unless_every_bar():
    rng = np.random.default_rng(0)
    data = sim_market(rng, 300, jumps=False)
    cfg = ExecutionConfig(taker_fee=0.001)
    tg = np.full(len(data), 0.5)
    once = run_targets(data, tg, cfg)
    every = run_targets(data, tg, cfg, rebalance="every_bar")
    assert np.count_nonzero(once.columns["filled"]) == 1
    assert np.count_nonzero(every.columns["filled"]) > 100  # price drift rebalanced each bar
    assert once.n_orders == 1 and len(once.trades) == 1


def test_targets_are_clipped_to_the_exposure_cap():
    data = bars([100] * 5, [100] * 5)
    res = run_targets(data, np.full(5, 10.0), ExecutionConfig(max_leverage=2.0))
    assert res.positions[1:].max() == pytest.approx(2.0)


def test_trades_flip_split_and_pnl_sums_to_equity_change():
    rng = np.random.default_rng(11)
    data = sim_market(rng, 2000)
    tg = _targets(rng, len(data), 1, levels=(-1.0, 0.0, 1.0, 2.0))[:, 0]
    res = run_targets(data, tg, COSTLY, stop_on_liquidation=False)
    tr = res.trades
    assert len(tr) > 20
    assert tr.pnl.sum() == pytest.approx(res.final_equity - 1.0, abs=1e-9)
    assert (tr.exit_index >= tr.entry_index).all()
    # trades never overlap except that a flip bar ends one and starts the next
    assert (tr.entry_index.to_numpy()[1:] >= tr.exit_index.to_numpy()[:-1]).all()
    assert (tr.costs > 0).mean() > 0.9
    held = np.flatnonzero(res.positions != 0)
    covered = np.zeros(len(res), dtype=bool)
    for e, x in zip(tr.entry_index, tr.exit_index, strict=True):
        covered[e : x + 1] = True
    assert covered[held].all()
    m = res.metrics(8760)
    assert list(m) == list(METRIC_NAMES)
    assert m["n_trades"] == len(tr)


def test_stop_on_liquidation_freezes_the_account():
    # 3x long from 100 (liquidation line 80), a bar's low at 75: liquidated intrabar at 80;
    # the rest of the slice is flat and frozen
    data = bars([100, 100, 100, 100, 90, 95], [100, 100, 100, 90, 95, 100], lows=[100, 100, 100, 75, 90, 95])
    tg = np.full(6, 3.0)
    res = run_targets(data, tg, ExecutionConfig(max_leverage=3.0, liquidation_fee=0.01))
    assert res.stop == "liquidation"
    k = res.stop_index
    assert res.columns["liquidated"][k]
    assert (res.returns[k + 1 :] == 0).all() and (res.equity[k + 1 :] == res.equity[k]).all()
    assert res.columns["stopped"][k + 1 :].all() and not res.columns["stopped"][: k + 1].any()
    assert res.trades.liquidated.all() and not res.columns["open_liquidation"].any()
    assert res.equity[k] == pytest.approx(1 - 3 * 0.2 - 0.01 * 3 * 0.8)
    cont = run_targets(data, tg, ExecutionConfig(max_leverage=3.0, liquidation_fee=0.01), stop_on_liquidation=False)
    assert cont.stop is None and np.count_nonzero(cont.columns["filled"]) == 2  # re-entered


def test_bad_inputs_raise():
    data = bars([100] * 5, [100] * 5)
    with pytest.raises(DataError, match="targets_shape"):
        run_targets(data, np.ones(4))
    with pytest.raises(DataError, match="finite_targets"):
        run_targets(data, np.r_[1.0, np.inf, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="slice"):
        run_targets(data, np.ones(5), start=4)
    with pytest.raises(ValueError, match="rebalance"):
        run_targets(data, np.ones(5), rebalance="weekly")


# --------------------------------------------------------------------------- batch


@pytest.mark.parametrize("fill_delay", [1, 2])
@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("rebalance", ["on_change", "every_bar"])
@pytest.mark.parametrize("perp", [False, True])
def test_batch_is_bit_identical_to_one_by_one(fill_delay, stop, rebalance, perp):
    rng = np.random.default_rng(fill_delay * 10 + stop)
    data = sim_market(rng, 1200, perp=perp)
    cfg = COSTLY.model_copy(update={"fill_delay": fill_delay})
    tg = _targets(rng, len(data), 6)
    tg[:, 0] = 1.0  # buy and hold
    tg[:, 1] = 0.0  # do nothing
    kw = {"rebalance": rebalance, "stop_on_liquidation": stop, "tolerance": 0.1}
    batch = run_targets_batch(data, tg, cfg, 20, 1100, **kw)
    for j, b in enumerate(batch):
        _same(run_targets(data, tg[:, j], cfg, 20, 1100, **kw), b)
    assert any(b.columns["liquidated"].any() for b in batch)  # the hard paths were exercised


def test_batch_with_one_config_per_strategy():
    rng = np.random.default_rng(5)
    data = sim_market(rng, 500)
    cfgs = [ExecutionConfig(taker_fee=f, max_leverage=2.0) for f in (0.0, 0.001, 0.01)]
    tg = _targets(rng, len(data), 3, levels=(-2.0, 0.0, 1.0, 2.0))
    batch = run_targets_batch(data, tg, cfgs, names=["a", "b", "c"])
    assert [b.name for b in batch] == ["a", "b", "c"]
    for j, b in enumerate(batch):
        _same(run_targets(data, tg[:, j], cfgs[j]), b)


# --------------------------------------------------------------------------- compiled loop == the Python loop


def test_compiled_ledger_rows_are_the_ledger_columns_in_order():
    rows = [J.L_PNL, J.L_FEE, J.L_SPREAD, J.L_IMPACT, J.L_FUNDING, J.L_SWAP, J.L_LFEE, J.L_EQUITY, J.L_CASH, J.L_UNITS, J.L_FILLED, J.L_UNFILLED]
    assert rows == list(range(J.NL)) and J.NL == len(LEDGER_COLUMNS) - 4  # the float columns, then 4 flags


@st.composite
def _config(draw, fill_delay: int) -> ExecutionConfig:
    return ExecutionConfig(
        fill_delay=fill_delay,
        taker_fee=draw(st.sampled_from([0.0, 0.001, 0.02])),
        spread_bps=draw(st.sampled_from([0.0, 3.0])),
        use_spread_series=draw(st.booleans()),
        slippage_bps=draw(st.sampled_from([0.0, 2.0])),
        impact_coef=draw(st.sampled_from([0.0, 0.1])),
        participation_cap=draw(st.sampled_from([None, 0.5])),
        cap_mode=draw(st.sampled_from(["partial", "reject"])),
        borrow_rate_short=draw(st.sampled_from([0.0, 1e-4])),
        borrow_rate_leverage=draw(st.sampled_from([0.0, 1e-4])),
        swap_long=draw(st.sampled_from([0.0, -1e-4])),
        max_leverage=draw(st.sampled_from([1.0, 2.0, 5.0, 20.0])),
        liquidation_fee=draw(st.sampled_from([0.0, 0.01])),
        allow_fill_across_gap=draw(st.booleans()),
    )


@st.composite
def _runs(draw, k: int):
    """A random market, k target series (NaN = no order, some constant runs) and run options."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(3, 250))
    rng = np.random.default_rng(seed)
    data = sim_market(rng, n, vol=draw(st.sampled_from([0.005, 0.03, 0.1])), jumps=draw(st.booleans()), perp=draw(st.booleans()))
    p = draw(st.sampled_from([0.05, 0.3, 1.0]))
    tg = _targets(rng, n, k, p=p, levels=(-25.0, -3.0, -1.0, -0.45, 0.0, 0.5, 0.55, 1.0, 3.0, 25.0))
    if draw(st.booleans()):  # held targets: equal consecutive values (on_change sends nothing)
        tg = pd.DataFrame(tg).ffill().to_numpy()
    start = draw(st.integers(0, n - 2))
    end = draw(st.integers(start + 2, n))
    fill_delay = draw(st.sampled_from([1, 2]))
    configs = [draw(_config(fill_delay)) for _ in range(k)]
    kw = {
        "rebalance": draw(st.sampled_from(["on_change", "every_bar"])),
        "tolerance": draw(st.sampled_from([0.0, 0.05, 0.5])),
        "stop_on_liquidation": draw(st.booleans()),
    }
    return data, tg, configs, start, end, draw(st.sampled_from([1.0, 1000.0])), kw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_runs(k=1))
def test_run_targets_is_bit_identical_to_the_python_loop(case):
    data, tg, configs, start, end, eq0, kw = case
    got = run_targets(data, tg[:, 0], configs[0], start, end, eq0, name="x", **kw)
    ref = reference_run_targets(data, tg[:, 0], configs[0], start, end, eq0, name="x", **kw)
    _same(got, ref)
    assert got.name == ref.name and got.ledger.equals(ref.ledger)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_runs(k=4))
def test_run_targets_batch_is_bit_identical_to_the_python_loop(case):
    data, tg, configs, start, end, eq0, kw = case
    got = run_targets_batch(data, tg, configs, start, end, eq0, **kw)
    ref = reference_run_targets_batch(data, tg, configs, start, end, eq0, **kw)
    assert len(got) == len(ref) == 4
    for a, b in zip(got, ref, strict=True):
        _same(a, b)
        assert a.name == b.name and a.ledger.equals(b.ledger)


def test_the_random_runs_reach_every_stop_and_drop():
    """The property tests above see liquidations, bankruptcies and dropped orders."""
    seen = set()
    rng = np.random.default_rng(11)
    for i in range(40):
        data = sim_market(rng, 200, vol=0.1)
        tg = _targets(rng, 200, 1, p=0.3, levels=(-25.0, -3.0, 0.0, 3.0, 25.0))[:, 0]
        cfg = ExecutionConfig(max_leverage=20.0, participation_cap=0.5, fill_delay=1 + i % 2, liquidation_fee=0.01)
        res = run_targets(data, tg, cfg, stop_on_liquidation=bool(i % 3))
        _same(res, reference_run_targets(data, tg, cfg, stop_on_liquidation=bool(i % 3)))
        seen.add(res.stop)
        if res.columns["dropped"].any():
            seen.add("dropped")
    assert seen >= {"liquidation", "bankruptcy", None, "dropped"}


# --------------------------------------------------------------------------- one simulator for agents and baselines


@pytest.mark.parametrize("perp", [False, True])
def test_targets_and_trading_env_give_identical_equity_and_ledger(perp):
    rng = np.random.default_rng(7)
    data = sim_market(rng, 900, jumps=False, perp=perp)
    cfg = ExecutionConfig(taker_fee=0.001, spread_bps=3.0, impact_coef=0.05, participation_cap=0.8, max_leverage=2.0, borrow_rate_short=1e-5)
    levels = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    # a target series that changes on random bars (the env has no "no order" action in the
    # continuous scheme: an unchanged target sends nothing, exactly like NaN in run_targets)
    tg = pd.Series(np.where(rng.random(len(data)) < 0.15, rng.choice(levels, len(data)), np.nan)).ffill().fillna(0.0).to_numpy()
    start, end = 29, 850
    # training devices (episode cut, drawdown stop) must not cut the evaluation
    env = TradingEnv(data, window=30, action_scheme="continuous", execution=cfg, max_episode_steps=50, max_drawdown=0.05)
    acc = env.account
    mx = cfg.max_exposure

    def policy(obs):  # the continuous scheme maps [-1, 1] to [-max_exposure, max_exposure]
        return np.array([tg[acc.t] / mx], dtype=np.float32)

    via_env = run_policy(env, policy, start, end)
    via_targets = run_targets(data, tg, cfg, start, end)
    assert via_env.stop == via_targets.stop
    n = via_env.stop_index + 1 if via_env.stop is not None else len(via_env)
    assert n > 500
    np.testing.assert_array_equal(via_env.equity, via_targets.equity)
    for k in LEDGER_COLUMNS:
        np.testing.assert_array_equal(via_env.columns[k], via_targets.columns[k], err_msg=k)
    pd.testing.assert_frame_equal(via_env.trades, via_targets.trades)


def test_run_policy_with_sb3_models():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # a shared 2-core machine
    from sb3_contrib import MaskablePPO, RecurrentPPO
    from stable_baselines3 import PPO

    rng = np.random.default_rng(1)
    data = sim_market(rng, 120, jumps=False)
    kw = {"policy_kwargs": {"net_arch": [8]}, "seed": 0, "device": "cpu", "n_steps": 16, "batch_size": 16}
    for algo, extra in ((PPO, {}), (MaskablePPO, {}), (RecurrentPPO, {"policy_kwargs": {"lstm_hidden_size": 8, "net_arch": [8]}})):
        env = TradingEnv(data, window=5, action_scheme="discrete", observation="flat", execution=ExecutionConfig(taker_fee=0.001))
        policy = "MlpLstmPolicy" if algo is RecurrentPPO else "MlpPolicy"
        model = algo(policy, env, **{**kw, **extra})
        a = run_policy(env, model, 10, 50, name=algo.__name__)
        b = run_policy(env, model, 10, 50)
        assert len(a) == 39 and a.name == algo.__name__
        np.testing.assert_array_equal(a.equity, b.equity)  # deterministic over a fixed slice


def test_run_policy_refuses_a_start_inside_the_first_window():
    data = sim_market(np.random.default_rng(0), 100)
    env = TradingEnv(data, window=30)
    with pytest.raises(ValueError, match="earliest start"):
        run_policy(env, lambda obs: 0, 10, 50)


# --------------------------------------------------------------------------- evaluate_strategies and calendars


class _Const:
    def __init__(self, x):
        self.x = x

    def targets(self, frame):
        return np.full(len(frame), self.x)


class _SeesRows:
    """Records how many rows it was shown (to prove the evaluation slice hides later rows)."""

    def __init__(self):
        self.seen = 0

    def targets(self, frame):
        self.seen = len(frame)
        return np.zeros(len(frame))


def _frame(n: int, freq: str = "1h", seed: int = 0) -> pd.DataFrame:
    return market(n, seed, vol=0.01, open_jitter=0.0, wick=0.001, random_wicks=False, volume=1e6, n_features=0,
                  frame=True, timeframe=freq, start="2024-01-01")


def test_evaluate_strategies_returns_results_and_a_metrics_table():
    frame = _frame(600)
    spy = _SeesRows()
    results, table = evaluate_strategies(
        {"long": _Const(1.0), "flat": _Const(0.0), "spy": spy}, frame, ExecutionConfig(taker_fee=0.001), start=100, end=500
    )
    assert list(table.index) == ["long", "flat", "spy"] and list(table.columns) == list(METRIC_NAMES)
    assert spy.seen == 500
    assert table.loc["flat", "total_return"] == 0.0
    assert table.loc["long", "n_bars"] == 399
    assert table.loc["long", "years"] == pytest.approx(399 / 8760)  # crypto 1h calendar
    np.testing.assert_array_equal(results["long"].returns, run_targets(MarketData.from_frame(frame, feature_columns=[]), np.ones(600), ExecutionConfig(taker_fee=0.001), 100, 500).returns)


# --------------------------------------------------------------------------- look-ahead check


class _Leaky:
    """Peeks one bar ahead: target = sign(close[t+1] - close[t])."""

    def targets(self, frame):
        c = frame["close"].to_numpy()
        out = np.zeros(len(c))
        out[:-1] = np.sign(np.diff(c))
        return out


class _FullSampleNormaliser:
    """A subtler leak: z-scores the close with the mean of the WHOLE frame."""

    def targets(self, frame):
        c = frame["close"].to_numpy()
        return np.sign(c - c.mean())


class _Honest:
    def targets(self, frame):
        c = frame["close"].to_numpy()
        out = np.zeros(len(c))
        out[1:] = np.sign(np.diff(c))
        return out


def test_lookahead_check_catches_peeking_and_passes_honest_strategies():
    frame = _frame(400)
    leak = lookahead_check(_Leaky(), frame, 25)
    assert not leak.passed and leak.n_mismatches >= 20
    assert "FAILED" in str(leak)
    assert (leak.mismatches["first_row"] == leak.mismatches["point"]).all()  # the decision at the truncation point differs
    assert not lookahead_check(_FullSampleNormaliser(), frame, 25).passed
    ok = lookahead_check(_Honest(), frame, [1, 50, 200, 398])
    assert ok.passed and ok.n_points == 4 and bool(ok)


def test_liquidations_at_the_open_are_told_apart_from_intrabar_ones():
    # the result classifies a liquidation from the ledger; check it against the liquidation
    # line the account held before each step
    rng = np.random.default_rng(1)
    n = 3000
    gap = rng.normal(0, 0.005, n) + np.where(rng.random(n) < 0.05, rng.choice([-0.35, 0.35], n), 0.0)
    move = rng.normal(0, 0.01, n) + np.where(rng.random(n) < 0.05, rng.choice([-0.35, 0.35], n), 0.0)
    o = np.empty(n)
    c = np.empty(n)
    prev = 100.0
    for t in range(n):  # jumps both at the open (gaps) and inside bars
        o[t] = prev * np.exp(gap[t])
        c[t] = prev = o[t] * np.exp(move[t])
    data = bars(o, c, highs=np.maximum(o, c) * 1.01, lows=np.minimum(o, c) * 0.99)
    cfg = ExecutionConfig(max_leverage=2.0, liquidation_fee=0.01, taker_fee=0.001)
    tg = np.where(rng.random(n) < 0.3, rng.choice((-2.0, -1.5, 1.5, 2.0), n), np.nan)
    res = run_targets(data, tg, cfg, stop_on_liquidation=False)
    acc = Account(data, cfg)
    acc.reset(0)
    last, expected = 0.0, []
    for t in range(len(data) - 1):
        x, order = tg[t], math.nan
        if not math.isnan(x) and (math.isnan(last) or x != last):
            order = last = float(x)
        lo, hi = acc.liq_lo, acc.liq_hi
        acc.step(order)
        o = data.open[t + 1]
        expected.append(bool(acc.liquidated and (o <= lo or o >= hi)))
        if acc.liquidated:
            last = 0.0
        elif acc.dropped:
            last = math.nan
    expected = np.array(expected)
    assert expected.sum() >= 10 and (res.columns["liquidated"] & ~expected).sum() >= 10  # both kinds occur
    assert res.stop is None and len(res.trades) > 100
    np.testing.assert_array_equal(res.columns["open_liquidation"], expected)
