"""The ledger identity and scalar/batch equivalence under random actions on random paths."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_arena.sim import LEDGER_FIELDS, Account, BatchAccounts, ExecutionConfig
from tests._markets import sim_market

configs = st.builds(
    ExecutionConfig,
    fill_delay=st.integers(1, 3),
    taker_fee=st.floats(0.0, 0.01),
    maker_fee=st.floats(0.0, 0.01),
    liquidity=st.sampled_from(["taker", "maker"]),
    spread_bps=st.floats(0.0, 50.0),
    use_spread_series=st.booleans(),
    slippage_bps=st.floats(0.0, 50.0),
    impact_coef=st.sampled_from([0.0, 0.05, 0.5]),
    participation_cap=st.sampled_from([None, 0.05, 0.5, 1.0]),
    cap_mode=st.sampled_from(["partial", "reject"]),
    funding_rate=st.floats(-1e-3, 1e-3),
    use_funding_series=st.booleans(),
    borrow_rate_short=st.floats(0.0, 1e-3),
    borrow_rate_leverage=st.floats(0.0, 1e-3),
    swap_long=st.floats(-1e-4, 1e-4),
    swap_short=st.floats(-1e-4, 1e-4),
    max_leverage=st.sampled_from([1.0, 2.0, 5.0, 20.0]),
    liquidation_fee=st.floats(0.0, 0.05),
    allow_fill_across_gap=st.booleans(),
)
PAIRS = (
    ("equity", "equity"), ("cash", "cash"), ("units", "units"), ("pnl", "pnl"), ("fee", "fee_paid"),
    ("spread", "spread"), ("impact", "impact_cost"), ("funding", "funding"), ("swap", "swap"),
    ("liquidation_fee", "liquidation_fee"), ("entry", "entry"), ("filled", "filled"),
    ("unfilled", "unfilled"), ("closed_return", "closed_return"), ("liquidated", "liquidated"),
    ("dropped", "dropped"), ("bars", "bars"),
)
TARGETS = [math.nan, math.nan, 0.0, 0.3, -0.3, 1.0, -1.0, 2.0, -2.0, 5.0, -5.0, 20.0, -20.0]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, n=st.integers(5, 200), perp=st.booleans())
def test_ledger_sums_to_equity_change_every_step(seed: int, config: ExecutionConfig, n: int, perp: bool) -> None:
    rng = np.random.default_rng(seed)
    data = sim_market(rng, n, perp=perp)  # perp: funding at the mark close, mark-price liquidation
    acc = Account(data, config, initial_equity=1000.0)
    acc.reset(int(rng.integers(0, n - 1)))
    cap = config.max_exposure
    while acc.t < n - 1:
        e0 = acc.equity
        target = TARGETS[rng.integers(len(TARGETS))]
        acc.step(max(-cap, min(cap, target)) if not math.isnan(target) else target)
        e1 = acc.equity
        total = sum(getattr(acc, f) for f in LEDGER_FIELDS)
        scale = max(abs(e0), abs(e1), 1e-300)
        assert abs((e1 - e0) - total) <= 1e-9 * scale, (acc.t, e0, e1, acc.ledger())
        assert abs(e1 - (acc.cash + acc.units * acc.mark)) <= 1e-9 * max(abs(acc.cash), abs(e1), 1e-300)
        for f in ("fee", "spread", "impact", "liquidation_fee"):
            assert getattr(acc, f) <= 0.0
        if acc.bankrupt:
            assert e1 <= 0.0
            break
        if acc.liquidated:
            assert acc.units == 0.0
            acc.reset(acc.t) if acc.t < n - 1 else None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, perp=st.booleans())
def test_batch_kernel_is_bit_identical_to_scalar_accounts(seed: int, config: ExecutionConfig, perp: bool) -> None:
    rng = np.random.default_rng(seed)
    n_bars, n_acc = 200, 4
    data = sim_market(rng, n_bars, perp=perp)
    accounts = [Account(data, config) for _ in range(n_acc)]
    batch = BatchAccounts(data, n_acc, config)
    starts = rng.integers(0, 50, n_acc)
    for i, a in enumerate(accounts):
        a.reset(int(starts[i]))
    batch.reset(np.arange(n_acc), starts)
    cap = config.max_exposure
    for _ in range(150):
        targets = np.clip(rng.choice(TARGETS, n_acc), -cap, cap)
        for i, a in enumerate(accounts):
            a.step(float(targets[i]))
        batch.step(targets)
        scalar = [[float(getattr(a, name)) for name, _ in PAIRS] for a in accounts]
        batched = np.stack([getattr(batch, attr).astype(float) for _, attr in PAIRS], axis=1)
        assert scalar == batched.tolist()
        for i, a in enumerate(accounts):
            if a.bankrupt or a.liquidated or a.t >= n_bars - 2:
                a.reset(10)
                batch.reset(i, 10)
