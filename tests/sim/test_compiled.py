"""The compiled kernels reproduce the pure-Python / numpy reference kernels bit for bit.

``tests/sim/_reference.py`` holds the kernels as they were before they were compiled with numba.
Every state variable and ledger output is compared after every step, over random configs, random
target sequences (including over-leveraged and NaN targets) and random price paths with jumps,
zero volume, gaps, funding and spread series. Scalar: identical bits (also the sign of zero);
batch: equal values (the numpy reference computes some zeros with the other sign).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_arena.sim import Account, BatchAccounts, ExecutionConfig
from quant_arena.sim import compiled as J
from tests._markets import bars, sim_market
from tests.sim._reference import RefAccount, RefBatchAccounts
from tests.sim.test_ledger import configs

SCALAR = (
    "t", "cash", "units", "equity", "mark", "entry", "bars", "liq_lo", "liq_hi", "pnl", "fee", "spread",
    "impact", "funding", "swap", "liquidation_fee", "filled", "unfilled", "closed_return", "dropped",
    "liquidated", "bankrupt", "closed", "n_trades", "n_unfillable", "n_dropped",
)
BATCH = (
    "t", "cash", "units", "equity", "mark", "entry", "bars", "liq_lo", "liq_hi", "pnl", "fee_paid", "spread",
    "impact_cost", "funding", "swap", "liquidation_fee", "filled", "unfilled", "closed_return", "dropped",
    "liquidated", "bankrupt", "closed", "n_trades", "n_unfillable", "n_dropped", "k", "queue",
)
TARGETS = [math.nan, math.nan, math.nan, 0.0, 0.3, -0.3, 1.0, -1.0, 2.0, -2.0, 5.0, -5.0, 20.0, -20.0, 1e6]


def _same(a, b) -> bool:
    """Identical values: equal with the same sign (zeros), or both NaN; same Python type."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (a != a and b != b)  # noqa: PLR0124
    return a == b


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, record=st.booleans(), perp=st.booleans())
def test_compiled_account_matches_the_reference_bit_for_bit(seed: int, config: ExecutionConfig, record: bool, perp: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 160
    data = sim_market(rng, n, perp=perp)  # perp: mark prices and funding every 8 bars
    acc = Account(data, config, 1000.0, record=record)
    ref = RefAccount(data, config, 1000.0, record=record)
    start = int(rng.integers(0, 40))
    acc.reset(start)
    ref.reset(start)
    cap = config.max_exposure
    for _ in range(300):
        tg = TARGETS[rng.integers(len(TARGETS))]
        tg = tg if rng.random() < 0.1 or math.isnan(tg) else max(-cap, min(cap, tg))  # some over the cap
        acc.step(tg)
        ref.step(tg)
        for name in SCALAR:
            a, b = getattr(acc, name), getattr(ref, name)
            # the reference takes its slower general path when recording: zeros may differ in sign
            ok = _same(a, b) if not record else (a == b or (a != a and b != b))  # noqa: PLR0124
            assert ok, (name, a, b, acc.t)
        if ref.bankrupt or ref.t >= n - 2 or rng.random() < 0.02:
            t0 = int(rng.integers(0, n - 2))
            acc.reset(t0)
            ref.reset(t0)
    if record:
        assert acc.history == ref.history


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, perp=st.booleans())
def test_compiled_batch_matches_the_numpy_reference(seed: int, config: ExecutionConfig, perp: bool) -> None:
    rng = np.random.default_rng(seed)
    n_bars, n_acc = 160, 5
    data = sim_market(rng, n_bars, perp=perp)
    levels = [config, config.scaled(fee_mult=2.0, slippage_mult=0.5, max_leverage=config.max_leverage * 2)]
    cfgs = [levels[i % 2] for i in range(n_acc)]
    batch = BatchAccounts(data, n_acc, cfgs, 100.0)
    ref = RefBatchAccounts(data, n_acc, cfgs, 100.0)
    starts = rng.integers(0, 40, n_acc)
    batch.reset(np.arange(n_acc), starts)
    ref.reset(np.arange(n_acc), starts)
    for _ in range(150):
        tg = np.array([TARGETS[i] for i in rng.integers(len(TARGETS), size=n_acc)])
        tg = np.clip(tg, -batch.max_exposure, batch.max_exposure)
        batch.step(tg)
        with np.errstate(all="ignore"):
            ref.step(tg)
        for name in BATCH:
            a, b = getattr(batch, name), getattr(ref, name)
            if a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                np.testing.assert_array_equal(a, b, err_msg=name)
                raise AssertionError((name, a.dtype, b.dtype))
        for j in range(n_acc):
            if ref.bankrupt[j] or ref.t[j] >= n_bars - 2:
                batch.reset(j, 10)
                ref.reset(j, 10)


def test_batch_state_reads_are_snapshots_and_parameters_are_live() -> None:
    data = bars([100.0] * 6, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    batch = BatchAccounts(data, 2, ExecutionConfig(participation_cap=0.5))
    before = batch.equity
    batch.step(np.array([1.0, 0.0]))
    batch.step(np.array([np.nan, np.nan]))
    assert before.tolist() == [1.0, 1.0]  # a copy taken before the step keeps its values
    assert batch.equity[0] != 1.0
    batch.cap[:] = 0.25  # parameters are views: written in place, the kernel sees them
    assert batch.arrays.P[J.P_CAP].tolist() == [0.25, 0.25]
    batch.cap = np.array([0.5, 0.5])
    assert batch.cap.tolist() == [0.5, 0.5]


def test_float32_observation_cast_matches_struct_pack_and_clips_out_of_range() -> None:
    import struct

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=2000) * 10.0 ** rng.integers(-40, 38, 2000), [0.0, -0.0, 1e-46]])
    for v in values.tolist():
        (expect,) = struct.unpack("f", struct.pack("f", v))
        assert float(J._f32(v)) == expect
    big = float(np.finfo(np.float32).max)
    assert float(J._f32(1e300)) == big
    assert float(J._f32(-math.inf)) == -big


def test_compiled_log_is_the_c_library_log() -> None:
    from numba import njit

    log = njit(lambda x: math.log(x))
    rng = np.random.default_rng(1)
    xs = np.concatenate([np.exp(rng.normal(0.0, 0.05, 5000)), rng.uniform(1e-12, 10.0, 5000)])
    assert all(log(x) == math.log(x) for x in xs.tolist())


def test_copying_or_pickling_the_compiled_state_fails_loudly() -> None:
    import copy
    import pickle

    import pytest

    data = bars([100.0] * 4, [100.0] * 4)
    for obj in (Account(data), BatchAccounts(data, 2)):
        for fn in (copy.deepcopy, pickle.dumps):  # (a shallow copy shares the state: aliasing, not unsafe)
            with pytest.raises(TypeError):
                fn(obj)
