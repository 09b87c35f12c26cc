"""Compiled (numba) kernels behind :class:`Account`, :class:`BatchAccounts` and the trading envs.

A public module of ``sim/`` (exported as ``quant_arena.sim.compiled``): its memory layout (the
``F_*``, ``E_*``, ``X_*`` ... row and slot numbers below) and its entry points (``env_step``,
``vec_step``, ``backtest_run``, ``trades_attribution`` ...) are the contract that ``envs/`` (the
compiled env steps) and ``evaluation/backtest.py`` build on. The env steps live here, not in
``envs/``, because of numba's cache (see the end of "Exactness").

Why compiled, and why this calling convention
---------------------------------------------
The account step is ~150 lines of scalar float logic run once per bar and account. In CPython it
costs ~5 us per call; as numpy array code over N accounts it costs ~170 array operations per
batched step whatever N is. Compiled, it costs tens of nanoseconds per account. What is left is the
cost of *calling* compiled code from Python: numba type-checks and unboxes every array argument
(~0.3-0.5 us each), which for the ~15 arrays the kernel reads would cost more than the work.
So every kernel takes one integer, the address of a small int64 *context* array that holds the
addresses of the state, parameter and market arrays (and their sizes), and turns those into typed
pointers inside compiled code (:func:`_f64p` & co.). Internal functions pass pointers, not
arrays, too (a compiled call with array arguments pays reference counting per array). The
Python objects that own a
context (``Account``, ``BatchAccounts``, ``TradingEnv``, ``TradingVecEnv``) keep every array it
points to alive and never rebind them (they write into them in place), so the addresses stay valid
for the object's lifetime. The market arrays are read-only and are only ever read.

Exactness
---------
The kernels evaluate the same Python expressions, in the same order, as the pure-Python kernel
they replace (kept verbatim in ``tests/sim/_reference.py`` and ``tests/envs/_reference_env.py``):
``fastmath`` is off, ``error_model="numpy"`` gives IEEE results where CPython's division would
raise (the reference falls back to the same IEEE values there), ``math.sqrt`` and ``math.log`` are
the C library's (correctly rounded sqrt; the same libm ``log`` CPython calls), and the float64 ->
float32 cast of the observation rounds to nearest like ``struct.pack``. The tests check the
compiled kernels against the reference bit for bit. :class:`BatchAccounts` runs the very same
compiled function per account, so batch == scalar holds by construction.

All kernels live in this one file on purpose: numba's on-disk cache (``cache=True``) re-validates a
function against its own source file only, so a kernel calling a function from another module
could be served stale machine code after that module changed.

Layout
------
Per-account state is held in row-major 2-D arrays with one column per account (so that a row,
``F[F_CASH]``, is a contiguous length-N vector; in the kernels, element ``F[k * n + j]``): ``F`` float64 state, ``IS`` int64 state, ``B``
bool state, ``P`` float64 parameters, ``PB`` bool parameters, ``Q`` the order queue (N, delay).
The environment kernels add ``E`` (float64 per-env state and outputs), ``EI`` (int64 per-env
state and outputs) and ``G`` (float64 constants of the env config).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_JIT = dict(cache=True, error_model="numpy")
# small helpers are inlined at numba-IR level (a compiled call costs a status check and blocks
# LLVM's optimisations across it); the big ones are not: IR inlining re-runs type inference per
# call site, which made the cold compile ~10x longer. Kernel functions take raw pointers, not
# arrays: a call with array arguments also pays reference-count bookkeeping per array.
_INLINE = dict(_JIT, inline="always")

NAN = math.nan
INF = math.inf
LOG_FLOOR = 1e-12
DSR_CLIP = 10.0
F32_MAX = float(np.finfo(np.float32).max)

# ---------------------------------------------------------------------------- account layout
# float64 state F (rows)
F_CASH, F_UNITS, F_EQUITY, F_MARK, F_ENTRY, F_LIQ_LO, F_LIQ_HI = 0, 1, 2, 3, 4, 5, 6
F_PNL, F_FEE, F_SPREAD, F_IMPACT, F_FUNDING, F_SWAP, F_LFEE = 7, 8, 9, 10, 11, 12, 13
F_FILLED, F_UNFILLED, F_CLOSED_RET = 14, 15, 16
NF = 17
# int64 state IS
I_T, I_BARS, I_K, I_NTRADES, I_NUNFILL, I_NDROP = 0, 1, 2, 3, 4, 5
NI = 6
# bool state B
B_DROPPED, B_LIQ, B_BANKRUPT, B_CLOSED = 0, 1, 2, 3
NB = 4
# float64 parameters P
P_FEE, P_SPM, P_SPC, P_SLIP, P_IMPACT, P_CAP, P_FRC = 0, 1, 2, 3, 4, 5, 6
P_BSHORT, P_BLEV, P_SWL, P_SWS, P_MM, P_LFEE, P_MAXEXP = 7, 8, 9, 10, 11, 12, 13
NP = 14
# bool parameters PB
Q_USE_SP, Q_CAP_REJECT, Q_USE_FR, Q_ALLOW_GAP = 0, 1, 2, 3
NQ = 4

# ---------------------------------------------------------------------------- env layout
# float64 per-env E
E_PEAK, E_LAST, E_DSR_A, E_DSR_B, E_START, E_FLOOR, E_MAXEXP, E_IM = 0, 1, 2, 3, 4, 5, 6, 7
E_DD, E_LR, E_REWARD = 8, 9, 10
E_C0 = 11  # 8 reward components E_C0 .. E_C0 + 7
NE = 19
# int64 per-env EI
EI_STEPS, EI_MAXLEN, EI_TERM, EI_TRUNC = 0, 1, 2, 3
NEI = 4
# float64 constants G
G_W0 = 0  # 8 weights
G_MAXDD, G_INV_TS, G_ETA, G_TOL = 8, 9, 10, 11
NG = 12

# ---------------------------------------------------------------------------- context slots
X_F, X_I, X_B, X_P, X_PB, X_Q, X_N, X_D, X_T = 0, 1, 2, 3, 4, 5, 6, 7, 8
X_OPEN, X_HIGH, X_LOW, X_CLOSE, X_VOL, X_GAPC, X_SP, X_FR, X_LOGRET = 9, 10, 11, 12, 13, 14, 15, 16, 17
X_TG = 18  # float64 targets of a batched step (N)
# env slots
X_E, X_EI, X_G = 19, 20, 21
X_SCHEME, X_ONLY_LR, X_DSR_ON, X_LAST_BAR = 22, 23, 24, 25
X_ACC_OUT = 26  # float32 account rows of the single env (rows of 6)
X_FEAT, X_W, X_NFEAT = 27, 28, 29
X_TABLE, X_NTAB = 30, 31  # float64 action -> target table of discrete schemes
X_ACT_I, X_ACT_F = 32, 33  # action buffers of the vec env: int64 (discrete) / float64 (continuous)
X_MK_OUT, X_MK_STRIDE, X_MK_STEP = 34, 35, 36  # vec obs: market rows (float32), env stride, block-row stride
X_AC_OUT, X_AC_STRIDE, X_AC_STEP = 37, 38, 39  # vec obs: account rows (float32)
X_RW_OUT, X_DN_OUT = 40, 41  # vec rewards (float32 rows of N), dones (bool rows of N)
# liquidation triggers (open, high, low) and funding valuation (close): the mark-price OHLC when
# the data has it, else the very same arrays as X_OPEN, X_HIGH, X_LOW, X_CLOSE
X_MO, X_MH, X_ML, X_MC = 42, 43, 44, 45
NCTX = 46


# ---------------------------------------------------------------------------- pointers
def _pointer_intrinsic(dtype):
    @intrinsic
    def cast(typingctx, addr):
        sig = types.CPointer(dtype)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    return cast


_f64p = _pointer_intrinsic(types.float64)
_f32p = _pointer_intrinsic(types.float32)
_i64p = _pointer_intrinsic(types.int64)
_u8p = _pointer_intrinsic(types.uint8)


def address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's first element."""
    if not a.flags.c_contiguous:
        raise ValueError("kernel arrays must be C-contiguous")
    return int(a.__array_interface__["data"][0])


def new_context() -> np.ndarray:
    return np.zeros(NCTX, dtype=np.int64)


# ---------------------------------------------------------------------------- the account step
@njit(**_INLINE)
def _rate(use, ptr, t, const):
    """A per-bar series value (NaN -> the constant) or the constant."""
    if use:
        x = ptr[t]
        if x == x:  # noqa: PLR0124 - NaN test
            return x
    return const


@njit(**_JIT)
def _account_step(F, IS, B, P, PB, Q, n, d, po, pc, pv, pg, psp, pfr, qo, qh, ql, qc, j, target):  # noqa: PLR0912, PLR0915
    """Account ``j``: record an order for ``target`` (NaN: none) and advance one bar.

    ``qo, qh, ql`` are the liquidation trigger prices (mark OHLC, else the last-trade open, high, low) and ``qc``
    the funding valuation price (mark close, else ``pc``). The expressions (and their order) are
    those of the pure-Python reference kernel; see :mod:`quant_arena.sim.kernel` for the timing
    and the ledger.
    """
    t = IS[I_T * n + j] + 1
    if d == 1:
        due = target
    else:
        k = IS[I_K * n + j]
        Q[j * d + k % d] = target
        due = Q[j * d + (k + 1) % d]
        IS[I_K * n + j] = k + 1
    u = F[F_UNITS * n + j]
    if u == 0.0 and due != due and F[F_CASH * n + j] > 0.0:  # noqa: PLR0124 - flat, solvent, nothing due
        IS[I_T * n + j] = t
        F[F_MARK * n + j] = pc[t]
        F[F_PNL * n + j] = 0.0
        F[F_FEE * n + j] = 0.0
        F[F_SPREAD * n + j] = 0.0
        F[F_IMPACT * n + j] = 0.0
        F[F_FUNDING * n + j] = 0.0
        F[F_SWAP * n + j] = 0.0
        F[F_LFEE * n + j] = 0.0
        F[F_FILLED * n + j] = 0.0
        F[F_UNFILLED * n + j] = 0.0
        F[F_CLOSED_RET * n + j] = 0.0
        B[B_DROPPED * n + j] = False
        B[B_LIQ * n + j] = False
        B[B_BANKRUPT * n + j] = False
        B[B_CLOSED * n + j] = False
        return
    o = po[t]
    c = pc[t]
    mm = P[P_MM * n + j]
    bshort = P[P_BSHORT * n + j]
    blev = P[P_BLEV * n + j]
    swl = P[P_SWL * n + j]
    sws = P[P_SWS * n + j]
    if due != due and u != 0.0:  # noqa: PLR0124 - holding, nothing due
        lo_ = F[F_LIQ_LO * n + j]
        hi_ = F[F_LIQ_HI * n + j]
        qo_ = qo[t]
        if lo_ < qo_ < hi_ and ql[t] > lo_ and qh[t] < hi_:
            # no liquidation this bar: the general path's numbers, fewer operations
            cash = F[F_CASH * n + j]
            value = u * c
            fr = _rate(PB[Q_USE_FR * n + j], pfr, t, P[P_FRC * n + j])
            fund = (
                -(fr * (u * qc[t]))
                - bshort * (-value if value < 0.0 else 0.0)
                - blev * (-cash if cash < 0.0 else 0.0)
            )
            swp = swl * value if value > 0.0 else (sws * -value if value < 0.0 else 0.0)
            cash = cash + fund + swp
            F[F_PNL * n + j] = u * (o - F[F_MARK * n + j]) + u * (c - o) + u * (c - c)
            equity = cash + value
            if u > 0.0:
                F[F_LIQ_LO * n + j] = -cash / (u * (1.0 - mm))
            else:
                F[F_LIQ_HI * n + j] = cash / (-u * (1.0 + mm))
            IS[I_BARS * n + j] += 1
            IS[I_T * n + j] = t
            F[F_CASH * n + j] = cash
            F[F_MARK * n + j] = c
            F[F_EQUITY * n + j] = equity
            F[F_FUNDING * n + j] = fund
            F[F_SWAP * n + j] = swp
            F[F_FEE * n + j] = 0.0
            F[F_SPREAD * n + j] = 0.0
            F[F_IMPACT * n + j] = 0.0
            F[F_LFEE * n + j] = 0.0
            F[F_FILLED * n + j] = 0.0
            F[F_UNFILLED * n + j] = 0.0
            F[F_CLOSED_RET * n + j] = 0.0
            B[B_DROPPED * n + j] = False
            B[B_LIQ * n + j] = False
            B[B_CLOSED * n + j] = False
            B[B_BANKRUPT * n + j] = equity <= 0.0
            return
    ua = u
    cash = F[F_CASH * n + j]
    m = F[F_MARK * n + j]
    entry = F[F_ENTRY * n + j]
    bars = IS[I_BARS * n + j]
    fee = spr = imp = lfee = filled = unfilled = closed_ret = 0.0
    dropped = liq = closed = False
    x = c
    oo = o  # the price the position carried in is valued at, at the open
    # 1. the open: gap through the liquidation price, else the due order
    qo_ = qo[t]
    lo_ = F[F_LIQ_LO * n + j]
    hi_ = F[F_LIQ_HI * n + j]
    if qo_ <= lo_ or qo_ >= hi_:
        # filled at the worse of the liquidation price and the open (the open when it gapped
        # through; the liquidation price when only the mark did)
        if u > 0.0:
            xo = lo_ if lo_ < o else o
        else:
            xo = hi_ if hi_ > o else o
        oo = xo
        cash = cash + u * xo
        lfee = -(P[P_LFEE * n + j] * abs(u) * xo)
        cash = cash + lfee
        closed = True
        closed_ret = (xo / entry - 1.0) if u > 0.0 else (1.0 - xo / entry)
        u = 0.0
        entry = 0.0
        bars = 0
        liq = True
        if due == due:  # noqa: PLR0124
            dropped = True
    elif due == due:  # noqa: PLR0124
        eq_o = cash + u * o
        tg = t - d if t >= d else 0
        if not PB[Q_ALLOW_GAP * n + j] and pg[t] != pg[tg]:
            dropped = True
        elif eq_o > 0.0:
            q = due * eq_o / o - u
            if q != 0.0:
                aq = abs(q)
                vol = pv[t]
                lim = P[P_CAP * n + j] * vol
                if aq > lim:
                    if PB[Q_CAP_REJECT * n + j]:
                        unfilled = aq
                        aq = 0.0
                    else:
                        unfilled = aq - lim
                        aq = lim
                imp_frac = 0.0
                impact = P[P_IMPACT * n + j]
                if impact > 0.0 and aq > 0.0:
                    if vol > 0.0:
                        imp_frac = impact * math.sqrt(aq / vol)
                    else:
                        unfilled = unfilled + aq
                        aq = 0.0
                if aq > 0.0:
                    q = aq if q > 0.0 else -aq
                    notional = aq * o
                    sp = _rate(PB[Q_USE_SP * n + j], psp, t, P[P_SPC * n + j])
                    spr = -(notional * (sp * P[P_SPM * n + j] + P[P_SLIP * n + j]))
                    imp = -(notional * imp_frac)
                    fee = -(notional * P[P_FEE * n + j])
                    cash = cash - q * o + spr + imp + fee
                    filled = q
                    un = u + q
                    if u == 0.0:
                        entry = o
                        bars = 0
                    elif un == 0.0 or (un > 0.0) != (u > 0.0):
                        closed = True
                        closed_ret = (o / entry - 1.0) if u > 0.0 else (1.0 - o / entry)
                        entry = o if un != 0.0 else 0.0
                        bars = 0
                    elif abs(un) > abs(u):
                        entry = (u * entry + q * o) / un
                    u = un
                else:
                    dropped = True
                if unfilled > 0.0:
                    IS[I_NUNFILL * n + j] += 1
        else:
            dropped = True
    ub = u
    # 2. intrabar liquidation of the position held after the open
    hit = False
    if u > 0.0:
        lq = -cash / (u * (1.0 - mm))
        if ql[t] <= lq:
            x = lq if lq < o else o
            hit = True
    elif u < 0.0:
        lq = cash / (-u * (1.0 + mm))
        if qh[t] >= lq:
            x = lq if lq > o else o
            hit = True
    if hit:
        cash = cash + u * x
        lfee = -(P[P_LFEE * n + j] * abs(u) * x)
        cash = cash + lfee
        closed = True
        closed_ret = (x / entry - 1.0) if u > 0.0 else (1.0 - x / entry)
        u = 0.0
        entry = 0.0
        bars = 0
        liq = True
    # 3. the close: mark, funding (valued at the mark close), borrow, swap
    value = u * c
    fr = _rate(PB[Q_USE_FR * n + j], pfr, t, P[P_FRC * n + j])
    fund = (
        -(fr * (u * qc[t]))
        - bshort * (-value if value < 0.0 else 0.0)
        - blev * (-cash if cash < 0.0 else 0.0)
    )
    swp = swl * value if value > 0.0 else (sws * -value if value < 0.0 else 0.0)
    cash = cash + fund + swp
    F[F_PNL * n + j] = ua * (oo - m) + ub * (x - oo) + u * (c - x)
    equity = cash + value
    if u > 0.0:
        F[F_LIQ_LO * n + j] = -cash / (u * (1.0 - mm))
        F[F_LIQ_HI * n + j] = INF
    elif u < 0.0:
        F[F_LIQ_LO * n + j] = -INF
        F[F_LIQ_HI * n + j] = cash / (-u * (1.0 + mm))
    else:
        F[F_LIQ_LO * n + j] = -INF
        F[F_LIQ_HI * n + j] = INF
    IS[I_BARS * n + j] = bars + 1 if u != 0.0 else 0
    IS[I_T * n + j] = t
    F[F_CASH * n + j] = cash
    F[F_UNITS * n + j] = u
    F[F_MARK * n + j] = c
    F[F_ENTRY * n + j] = entry
    F[F_EQUITY * n + j] = equity
    F[F_FEE * n + j] = fee
    F[F_SPREAD * n + j] = spr
    F[F_IMPACT * n + j] = imp
    F[F_FUNDING * n + j] = fund
    F[F_SWAP * n + j] = swp
    F[F_LFEE * n + j] = lfee
    F[F_FILLED * n + j] = filled
    F[F_UNFILLED * n + j] = unfilled
    F[F_CLOSED_RET * n + j] = closed_ret
    B[B_DROPPED * n + j] = dropped
    B[B_LIQ * n + j] = liq
    B[B_CLOSED * n + j] = closed
    B[B_BANKRUPT * n + j] = equity <= 0.0
    if filled != 0.0:
        IS[I_NTRADES * n + j] += 1
    if dropped:
        IS[I_NDROP * n + j] += 1


@njit(**_INLINE)
def _views(x):
    """Pointers to the state of a context: (F, IS, B, P, PB, Q, n, delay); row k of F is F[k * n:]."""
    return (_f64p(x[X_F]), _i64p(x[X_I]), _u8p(x[X_B]), _f64p(x[X_P]), _u8p(x[X_PB]), _f64p(x[X_Q]),
            x[X_N], x[X_D])


@njit(**_JIT)
def account_step(ctx, j, target):
    """Step account ``j`` of the context at address ``ctx`` with one target (NaN: no order)."""
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    _account_step(F, IS, B, P, PB, Q, n, d, _f64p(x[X_OPEN]),
                  _f64p(x[X_CLOSE]), _f64p(x[X_VOL]), _i64p(x[X_GAPC]), _f64p(x[X_SP]), _f64p(x[X_FR]),
                  _f64p(x[X_MO]), _f64p(x[X_MH]), _f64p(x[X_ML]), _f64p(x[X_MC]), j, target)


@njit(**_JIT)
def batch_step(ctx):
    """Step every account of the context with the targets in its target buffer."""
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    tg = _f64p(x[X_TG])
    po, pc = _f64p(x[X_OPEN]), _f64p(x[X_CLOSE])
    pv, pg, psp, pfr = _f64p(x[X_VOL]), _i64p(x[X_GAPC]), _f64p(x[X_SP]), _f64p(x[X_FR])
    qo, qh, ql, qc = _f64p(x[X_MO]), _f64p(x[X_MH]), _f64p(x[X_ML]), _f64p(x[X_MC])
    for j in range(n):
        _account_step(F, IS, B, P, PB, Q, n, d, po, pc, pv, pg, psp, pfr, qo, qh, ql, qc, j, tg[j])


# ---------------------------------------------------------------------------- the backtest loop
# per-bar ledger rows a backtest run writes per account (float64 and bool blocks of ``m`` bars)
L_PNL, L_FEE, L_SPREAD, L_IMPACT, L_FUNDING, L_SWAP, L_LFEE = 0, 1, 2, 3, 4, 5, 6
L_EQUITY, L_CASH, L_UNITS, L_FILLED, L_UNFILLED = 7, 8, 9, 10, 11
NL = 12
LB_LIQ, LB_DROPPED = 0, 1
NLB = 2


@njit(**_JIT)
def backtest_run(ctx, tg, m, every, tol, stop_liq, out, outb, res):  # noqa: PLR0912, PLR0915 - one flat loop
    """``run_targets``' order logic and ``m`` account steps for every account of the context.

    Account ``j`` reads its (clipped) targets at address ``tg`` (float64 rows of ``m``, row
    ``j``; NaN: no order) and sends one when ``every`` (non-zero) or when it differs from the
    last target sent by more than ``tol`` (a NaN last target: unknown, always send); a dropped
    order makes the last target unknown, a liquidation makes it 0 (a kernel step flags
    ``dropped`` only for a due order). Its ledger goes to the float64 block ``out`` (rows of
    ``m``: ``NL`` rows per account, ``L_*``) and the bool block ``outb`` (``NLB`` rows per
    account, ``LB_*``); rows after a stop are left untouched. The run stops after the bar where
    equity is not positive (code 1) or, when ``stop_liq`` (non-zero), where a liquidation
    happened (code 2); ``res`` (int64 rows of 2) receives the bars run and the stop code.
    """
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    po, pc = _f64p(x[X_OPEN]), _f64p(x[X_CLOSE])
    pv, pg, psp, pfr = _f64p(x[X_VOL]), _i64p(x[X_GAPC]), _f64p(x[X_SP]), _f64p(x[X_FR])
    qo, qh, ql, qc = _f64p(x[X_MO]), _f64p(x[X_MH]), _f64p(x[X_ML]), _f64p(x[X_MC])
    r = _i64p(res)
    for j in range(n):
        t = _f64p(tg + 8 * j * m)
        o = _f64p(out + 8 * j * NL * m)
        ob = _u8p(outb + j * NLB * m)
        last = 0.0
        live = m
        code = 0
        for i in range(m):
            tgt = t[i]
            order = NAN
            if tgt == tgt:  # noqa: PLR0124 - NaN test
                if every or last != last or abs(tgt - last) > tol:  # noqa: PLR0124
                    order = tgt
                    last = tgt
            _account_step(F, IS, B, P, PB, Q, n, d, po, pc, pv, pg, psp, pfr, qo, qh, ql, qc, j, order)
            o[L_PNL * m + i] = F[F_PNL * n + j]
            o[L_FEE * m + i] = F[F_FEE * n + j]
            o[L_SPREAD * m + i] = F[F_SPREAD * n + j]
            o[L_IMPACT * m + i] = F[F_IMPACT * n + j]
            o[L_FUNDING * m + i] = F[F_FUNDING * n + j]
            o[L_SWAP * m + i] = F[F_SWAP * n + j]
            o[L_LFEE * m + i] = F[F_LFEE * n + j]
            eq = F[F_EQUITY * n + j]
            o[L_EQUITY * m + i] = eq
            o[L_CASH * m + i] = F[F_CASH * n + j]
            o[L_UNITS * m + i] = F[F_UNITS * n + j]
            o[L_FILLED * m + i] = F[F_FILLED * n + j]
            o[L_UNFILLED * m + i] = F[F_UNFILLED * n + j]
            liq = B[B_LIQ * n + j]
            drp = B[B_DROPPED * n + j]
            ob[LB_LIQ * m + i] = liq
            ob[LB_DROPPED * m + i] = drp
            if liq:
                last = 0.0
            elif drp:
                last = NAN
            if eq <= 0.0:
                live = i + 1
                code = 1
                break
            if liq and stop_liq:
                live = i + 1
                code = 2
                break
        r[2 * j] = live
        r[2 * j + 1] = code


# ---------------------------------------------------------------------------- the trades table
@njit(**_INLINE)
def _sign(x):
    """``np.sign`` of a float (NaN stays NaN)."""
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else x)


@njit(**_JIT)
def trades_attribution(args, n):  # noqa: PLR0912, PLR0915 - two flat passes
    """The round-trip attribution of ``evaluation.backtest.trades_from_ledger`` over ``n`` bars.

    ``args`` is the address of an int64 array of addresses: the float64 per-bar inputs units,
    equity, previous equity, filled, fee, spread, impact, funding, swap, liquidation_fee, the
    bool open_liquidation, then open, previous close, units before and after the open (``ua``,
    ``ub``); then the outputs (room for ``n`` trades): int64 entry and exit bars, float64 pnl
    and costs paid, bool still-open and liquidated. Returns the number of trades ``k``.

    The expressions are those of the numpy version this replaced (kept in the tests), and the
    sums run in the order of its ``np.add.at`` calls (first the part of each trade's closing bar
    that is its own when the trade ends at an open, then the bars it holds, in bar order), so
    the numbers are the same bit for bit.
    """
    a = _i64p(args)
    u, eq, prev, filled = _f64p(a[0]), _f64p(a[1]), _f64p(a[2]), _f64p(a[3])
    fee, spread, impact, funding, swap, lfee = _f64p(a[4]), _f64p(a[5]), _f64p(a[6]), _f64p(a[7]), _f64p(a[8]), _f64p(a[9])
    open_liq = _u8p(a[10])
    po, mark, ua, ub = _f64p(a[11]), _f64p(a[12]), _f64p(a[13]), _f64p(a[14])
    entry, exit_, pnl, cost = _i64p(a[15]), _i64p(a[16]), _f64p(a[17]), _f64p(a[18])
    is_open, liq = _u8p(a[19]), _u8p(a[20])
    # pass 1: entries; every trade starts open, to the last bar, not liquidated
    k = 0
    for i in range(n):
        sa = _sign(ua[i])
        sb = _sign(ub[i])
        if sb != 0.0 and sb != sa:  # noqa: PLR1714 - a trade starts at this open
            entry[k] = i
            exit_[k] = n - 1
            pnl[k] = 0.0
            cost[k] = 0.0
            is_open[k] = True
            liq[k] = False
            k += 1
    # pass 2: the part of the trade held into an open that ends there (flattened or flipped)
    cum = 0
    for i in range(n):
        sa = _sign(ua[i])
        sb = _sign(ub[i])
        new = 1 if sb != 0.0 and sb != sa else 0  # noqa: PLR1714
        cum += new
        if sa != 0.0 and sb != sa:  # noqa: PLR1714
            jb = cum - 1 - new
            fill_cost = fee[i] + spread[i] + impact[i]
            if sb != 0.0:  # a flip: the gap and a pro-rata share of the fill's costs
                share = abs(ua[i]) / abs(filled[i]) if filled[i] != 0.0 else 1.0
                share = 1.0 if share > 1.0 else share
                pnl[jb] += ua[i] * (po[i] - mark[i]) + fill_cost * share
                cost[jb] += fill_cost * share
            else:
                pnl[jb] += eq[i] - prev[i]
                cost[jb] += fill_cost + (funding[i] + swap[i]) + lfee[i]
            exit_[jb] = i
            is_open[jb] = False
            liq[jb] = open_liq[i]
    # pass 3: the bars a trade holds after the open (the rest of a flip bar, else the whole bar)
    cum = 0
    for i in range(n):
        sa = _sign(ua[i])
        sb = _sign(ub[i])
        if sb != 0.0 and sb != sa:  # noqa: PLR1714
            cum += 1
        if sb != 0.0:
            ja = cum - 1
            total = eq[i] - prev[i]
            fill_cost = fee[i] + spread[i] + impact[i]
            other_cost = funding[i] + swap[i]
            if sa != 0.0 and sb != sa:  # noqa: PLR1714 - a flip
                share = abs(ua[i]) / abs(filled[i]) if filled[i] != 0.0 else 1.0
                share = 1.0 if share > 1.0 else share
                pnl[ja] += total - (ua[i] * (po[i] - mark[i]) + fill_cost * share)
                cost[ja] += fill_cost * (1.0 - share) + other_cost + lfee[i]
            else:
                pnl[ja] += total
                cost[ja] += fill_cost + other_cost + lfee[i]
            x = u[i]
            if x == 0.0:  # liquidated intrabar (sign(u) == 0)
                exit_[ja] = i
                is_open[ja] = False
                liq[ja] = True
    return k


# ---------------------------------------------------------------------------- the env step
@njit(**_INLINE)
def _f32(v):
    """float64 -> float32 (round to nearest), values beyond the float32 range clipped to +-max."""
    if v > F32_MAX:
        y = np.float32(v)
        return y if y <= F32_MAX else np.float32(F32_MAX)
    if v < -F32_MAX:
        y = np.float32(v)
        return y if y >= -F32_MAX else np.float32(-F32_MAX)
    return np.float32(v)


@njit(**_INLINE)
def _account_row(F, IS, E, G, n, j, out):
    """The 6 account features of env ``j`` (TradingEnv's expressions) into ``out[0:6]``."""
    e = F[F_EQUITY * n + j]
    floor = E[E_FLOOR * n + j]
    es = e if e > floor else floor
    u = F[F_UNITS * n + j]
    if u != 0.0:
        c = F[F_MARK * n + j]
        uc = u * c
        entry = F[F_ENTRY * n + j]
        out[0] = _f32(uc / es)
        out[1] = _f32(u * (c - entry) / es)
        out[2] = _f32(e / E[E_START * n + j] - 1.0)
        out[3] = _f32(IS[I_BARS * n + j] * G[G_INV_TS])
        out[4] = _f32(entry / c - 1.0)
        out[5] = _f32(abs(uc) * E[E_IM * n + j] / es)
    else:
        out[0] = np.float32(0.0)
        out[1] = np.float32(0.0)
        out[2] = _f32(e / E[E_START * n + j] - 1.0)
        out[3] = np.float32(0.0)
        out[4] = np.float32(0.0)
        out[5] = np.float32(0.0)


@njit(**_INLINE)
def _env_views(x):
    return _f64p(x[X_E]), _i64p(x[X_EI]), _f64p(x[X_G])


@njit(**_JIT)
def _env_step(x, F, IS, B, P, PB, Q, n, d, E, EI, G, j, tg):  # noqa: PLR0912, PLR0915
    """TradingEnv.step after the action -> target lookup: order, account step, reward, flags.

    Writes the reward, its components, the drawdown and the termination code / truncation flag
    into ``E`` / ``EI`` (column ``j``); returns the reward.
    """
    last = E[E_LAST * n + j]
    order = NAN
    if tg == tg:  # noqa: PLR0124 - NaN test (hold)
        if x[X_SCHEME] != 2:
            if tg != last:  # also when last is NaN (unknown after a dropped order)
                order = tg
                E[E_LAST * n + j] = tg
        elif last != last or abs(tg - last) > G[G_TOL]:  # noqa: PLR0124
            order = tg
            E[E_LAST * n + j] = tg
    e0 = F[F_EQUITY * n + j]
    floor = E[E_FLOOR * n + j]
    e0s = e0 if e0 > floor else floor  # a step from a bankrupt account (equity <= 0) stays finite
    _account_step(F, IS, B, P, PB, Q, n, d, _f64p(x[X_OPEN]),
                  _f64p(x[X_CLOSE]), _f64p(x[X_VOL]), _i64p(x[X_GAPC]), _f64p(x[X_SP]), _f64p(x[X_FR]),
                  _f64p(x[X_MO]), _f64p(x[X_MH]), _f64p(x[X_ML]), _f64p(x[X_MC]), j, order)
    e1 = F[F_EQUITY * n + j]
    if B[B_LIQ * n + j]:
        E[E_LAST * n + j] = 0.0
    elif B[B_DROPPED * n + j]:
        E[E_LAST * n + j] = NAN
    steps = EI[EI_STEPS * n + j] + 1
    EI[EI_STEPS * n + j] = steps
    peak = E[E_PEAK * n + j]
    if e1 > peak:
        peak = e1
        E[E_PEAK * n + j] = e1
    dd = 1.0 - e1 / peak
    ratio = e1 / e0s
    lr = math.log(ratio if ratio > LOG_FLOOR else LOG_FLOOR)
    t = IS[I_T * n + j]
    if x[X_ONLY_LR]:
        reward = G[G_W0] * lr
    else:
        c2 = 0.0
        if x[X_DSR_ON]:
            r = e1 / e0s - 1.0
            a = E[E_DSR_A * n + j]
            b = E[E_DSR_B * n + j]
            var = b - a * a
            if var > 1e-12:
                dsr = (b * (r - a) - 0.5 * a * (r * r - b)) / (var * math.sqrt(var))
                dsr = DSR_CLIP if dsr > DSR_CLIP else (-DSR_CLIP if dsr < -DSR_CLIP else dsr)
            else:
                dsr = 0.0
            eta = G[G_ETA]
            E[E_DSR_A * n + j] = a + eta * (r - a)
            E[E_DSR_B * n + j] = b + eta * (r * r - b)
            c2 = dsr
        E[E_C0 * n + j] = lr
        E[(E_C0 + 1) * n + j] = -dd
        E[(E_C0 + 2) * n + j] = c2
        E[(E_C0 + 3) * n + j] = (F[F_FEE * n + j] + F[F_SPREAD * n + j] + F[F_IMPACT * n + j] + F[F_LFEE * n + j]) / e0s
        E[(E_C0 + 4) * n + j] = -1.0 if F[F_UNITS * n + j] == 0.0 else 0.0
        E[(E_C0 + 5) * n + j] = -1.0 if F[F_FILLED * n + j] != 0.0 else 0.0
        E[(E_C0 + 6) * n + j] = 1.0 if B[B_CLOSED * n + j] and F[F_CLOSED_RET * n + j] > 0.0 else 0.0
        E[(E_C0 + 7) * n + j] = lr - _f64p(x[X_LOGRET])[t]
        reward = 0.0
        for i in range(8):
            w = G[G_W0 + i]
            if w != 0.0:
                reward += w * E[(E_C0 + i) * n + j]
    E[E_DD * n + j] = dd
    E[E_LR * n + j] = lr
    E[E_REWARD * n + j] = reward
    code = 0
    if B[B_BANKRUPT * n + j]:
        code = 1
    elif B[B_LIQ * n + j]:
        code = 2
    elif dd >= G[G_MAXDD]:
        code = 3
    EI[EI_TERM * n + j] = code
    EI[EI_TRUNC * n + j] = 1 if code == 0 and (t >= x[X_LAST_BAR] or steps >= EI[EI_MAXLEN * n + j]) else 0
    return reward


@njit(**_JIT)
def env_step(ctx, tg, row):
    """One TradingEnv step (env 0 of the context) with target ``tg``; the account observation
    goes to row ``row`` of the account-row buffer. Returns (reward, equity, log return, t, code)
    with ``code = termination (0 none, 1 bankruptcy, 2 liquidation, 3 max drawdown) + 4 * truncated``.
    """
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    E, EI, G = _env_views(x)
    reward = _env_step(x, F, IS, B, P, PB, Q, n, d, E, EI, G, 0, tg)
    _account_row(F, IS, E, G, n, 0, _f32p(x[X_ACC_OUT] + 24 * row))
    return reward, F[F_EQUITY * n], E[E_LR * n], IS[I_T * n], EI[EI_TERM * n] + 4 * EI[EI_TRUNC * n]


@njit(**_JIT)
def env_observe(ctx, row):
    """The account observation of env 0 into row ``row`` of the account-row buffer."""
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    E, EI, G = _env_views(x)
    _account_row(F, IS, E, G, n, 0, _f32p(x[X_ACC_OUT] + 24 * row))


@njit(**_JIT)
def _vec_obs(x, F, IS, E, G, n, j, s):
    """Market window and account row of env ``j`` into block row ``s`` of the vec obs buffers."""
    w = x[X_W]
    nf = x[X_NFEAT]
    size = w * nf
    t = IS[I_T * n + j]
    src = _f32p(x[X_FEAT] + 4 * (t - w + 1) * nf)
    dst = _f32p(x[X_MK_OUT] + 4 * (s * x[X_MK_STEP] + j * x[X_MK_STRIDE]))
    for i in range(size):
        dst[i] = src[i]
    _account_row(F, IS, E, G, n, j, _f32p(x[X_AC_OUT] + 4 * (s * x[X_AC_STEP] + j * x[X_AC_STRIDE])))


@njit(**_JIT)
def vec_observe(ctx, s, j):
    """Observation of env ``j`` (all envs when ``j < 0``) into block row ``s``."""
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    E, EI, G = _env_views(x)
    if j >= 0:
        _vec_obs(x, F, IS, E, G, n, j, s)
    else:
        for i in range(n):
            _vec_obs(x, F, IS, E, G, n, i, s)


@njit(**_JIT)
def vec_step(ctx, s):
    """One TradingVecEnv step of every env from the action buffer, outputs into block row ``s``.

    Returns the number of finished envs, or ``-1 - j`` when env ``j``'s discrete action is out of range.
    """
    x = _i64p(ctx)
    F, IS, B, P, PB, Q, n, d = _views(x)
    E, EI, G = _env_views(x)
    scheme = x[X_SCHEME]
    ntab = x[X_NTAB]
    table = _f64p(x[X_TABLE])
    acts_i = _i64p(x[X_ACT_I])
    acts_f = _f64p(x[X_ACT_F])
    rw = _f32p(x[X_RW_OUT] + 4 * s * n)
    dn = _u8p(x[X_DN_OUT] + s * n)
    if scheme != 2:
        for j in range(n):
            a = acts_i[j]
            if a < -ntab or a >= ntab:
                return -1 - j
    ndone = 0
    for j in range(n):
        mx = E[E_MAXEXP * n + j]
        if scheme == 2:
            a = acts_f[j]
            tg = (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * mx
        else:
            a = acts_i[j]
            tg = table[a if a >= 0 else a + ntab]
            tg = tg if not tg > mx else mx
            tg = tg if not tg < -mx else -mx
        reward = _env_step(x, F, IS, B, P, PB, Q, n, d, E, EI, G, j, tg)
        rw[j] = np.float32(reward)
        done = EI[EI_TERM * n + j] != 0 or EI[EI_TRUNC * n + j] != 0
        dn[j] = done
        ndone += done
        _vec_obs(x, F, IS, E, G, n, j, s)
    return ndone
