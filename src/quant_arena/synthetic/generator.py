"""A seeded, regime-switching OHLCV market generator.

The market moves through *regimes* (by default uptrend, downtrend, ranging, volatility
expansion and volatility contraction). The regime path is a semi-Markov chain: each visit to a
regime lasts a whole number of bars drawn uniformly from that regime's ``[min_bars, max_bars]``,
then the next regime is drawn from the regime's row of the transition matrix (the diagonal is
zero: how long a regime lasts is set by its duration range, not by self-transitions).

Within a regime, the log price follows

* **GBM** (``mean_reversion == 0``): ``r_t = mu + sigma_t * z_t``;
* **Ornstein-Uhlenbeck around a moving anchor** (``mean_reversion = theta > 0``): the log price
  is ``anchor_t + d_t`` with ``anchor_t`` starting at the segment's first price and drifting by
  ``mu`` per bar, and ``d_t = (1 - theta) * d_{t-1} + sigma_t * z_t``.

``mu`` and ``sigma`` come from the regime's annualised ``drift`` (mean log return per year) and
``volatility`` (std of log returns per year); a year is 365.25 calendar days of bars (markets that
trade around the clock, like crypto). ``vol_ramp`` makes volatility move geometrically from
``volatility / sqrt(vol_ramp)`` at the start of a segment to ``volatility * sqrt(vol_ramp)`` at its
end (``> 1`` for expansion, ``< 1`` for contraction).

Optional stylised facts:

* fat tails: ``student_t_dof`` draws innovations ``z_t`` from a Student-t scaled to unit variance;
* volatility clustering: ``garch`` multiplies ``sigma_t`` by ``exp(h_t - Var h)`` where
  ``h_t`` is a two-component EGARCH log-volatility driven by past innovations, a fast component
  ``beta * fast_{t-1} + alpha * (|z_{t-1}| - E|z|) + leverage * z_{t-1}`` plus a slow one with
  ``slow_alpha``/``slow_beta`` (the normalisation keeps the mean squared multiplier about 1, so the
  configured volatilities keep their meaning). It runs across regime boundaries. A shock moves
  volatility only up to ``impact_cap`` standard deviations (an EGARCH fed by Student-t draws
  otherwise lets one extreme draw multiply volatility by orders of magnitude), and innovations
  are clipped at ``max_shock`` standard deviations.

Bars: ``open_t = close_{t-1}``; the high and low are the maximum and minimum of a Brownian bridge
from open to close with the bar's variance (sampled exactly from the bridge's extreme-value
distribution), so ``high >= max(open, close)``, ``low <= min(open, close)`` and prices stay
positive. Volume is lognormal around the regime's level and rises with the size of the bar's
shock (``volume_return_coupling``).

Everything is vectorised numpy: the only Python loop follows the regime path (one step per
segment, not per bar).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quant_arena.market.calendars import bars_per_calendar_year
from quant_arena.market.ingest import SyntheticSource, register_synthetic_source
from quant_arena.market.schema import timeframe_seconds

#: the generator's year in days (calendar time: annual drift and volatility scale by the bars in it)
YEAR_DAYS: float = 365.25
#: volume reacts to shocks up to this many standard deviations
VOLUME_IMPACT_CAP: float = 4.0

#: The default regime names, in their default order.
REGIME_NAMES: tuple[str, ...] = (
    "uptrend",
    "downtrend",
    "ranging",
    "vol_expansion",
    "vol_contraction",
)


class RegimeConfig(BaseModel):
    """Parameters of one regime. Rates are annualised; durations are in bars."""

    model_config = ConfigDict(extra="forbid")

    drift: float = Field(0.0, description="annualised mean log return")
    volatility: float = Field(
        0.6, gt=0, description="annualised std of log returns (mid-segment level)"
    )
    vol_ramp: float = Field(
        1.0,
        gt=0,
        description="volatility at segment end / at segment start (>1 expansion, <1 contraction)",
    )
    mean_reversion: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="OU pull per bar towards the moving anchor; 0 = GBM",
    )
    min_bars: int = Field(24, ge=1, description="shortest visit to the regime, in bars")
    max_bars: int = Field(240, ge=1, description="longest visit to the regime, in bars")
    volume: float = Field(
        1000.0, gt=0, description="typical volume per bar (base units)"
    )
    volume_noise: float = Field(
        0.4, ge=0, description="lognormal sigma of volume around its level"
    )

    @model_validator(mode="after")
    def _durations(self) -> RegimeConfig:
        if self.min_bars > self.max_bars:
            raise ValueError(
                f"min_bars ({self.min_bars}) must be <= max_bars ({self.max_bars})"
            )
        return self


class GarchConfig(BaseModel):
    """Two-component EGARCH-style log-volatility ``h_t = fast_t + slow_t``.

    ``fast_t = beta fast_{t-1} + alpha (|z_{t-1}| - E|z|) + leverage z_{t-1}`` captures bursts;
    ``slow_t = slow_beta slow_{t-1} + slow_alpha (|z_{t-1}| - E|z|)`` the slowly moving level
    (weeks to months). ``slow_alpha = 0`` gives a plain EGARCH(1,1).
    """

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(
        0.08,
        ge=0,
        le=2,
        description="reaction of log-volatility to the size of a shock",
    )
    beta: float = Field(
        0.95, ge=0, lt=1, description="persistence of the fast component per bar"
    )
    leverage: float = Field(
        0.0,
        ge=-2,
        le=2,
        description="reaction to the sign of a shock (<0: falls raise vol)",
    )
    slow_alpha: float = Field(
        0.045, ge=0, le=2, description="reaction of the slow component"
    )
    impact_cap: float = Field(
        4.0,
        gt=0,
        description="shocks move volatility up to this many standard deviations and no further",
    )
    slow_beta: float = Field(
        0.998, ge=0, lt=1, description="persistence of the slow component per bar"
    )


def _default_regimes() -> dict[str, RegimeConfig]:
    # Rounded from calibrate() on Coinbase BTC/USD 1h, 2017-07 to 2019-10 (see
    # conf/base/parameters_synthetic.yml); trend drifts toned down from the fitted ~ +/-11.
    return {
        "uptrend": RegimeConfig(
            drift=6.0,
            volatility=0.75,
            min_bars=20,
            max_bars=90,
            volume=650,
            volume_noise=0.8,
        ),
        "downtrend": RegimeConfig(
            drift=-7.0,
            volatility=0.85,
            min_bars=16,
            max_bars=60,
            volume=650,
            volume_noise=0.8,
        ),
        "ranging": RegimeConfig(
            drift=0.0,
            volatility=0.85,
            mean_reversion=0.01,
            min_bars=24,
            max_bars=250,
            volume=560,
            volume_noise=0.8,
        ),
        "vol_expansion": RegimeConfig(
            drift=0.0,
            volatility=0.9,
            vol_ramp=4.0,
            min_bars=16,
            max_bars=60,
            volume=700,
            volume_noise=0.9,
        ),
        "vol_contraction": RegimeConfig(
            drift=0.5,
            volatility=0.75,
            vol_ramp=0.5,
            min_bars=18,
            max_bars=60,
            volume=550,
            volume_noise=0.8,
        ),
    }


def _default_transitions() -> dict[str, dict[str, float]]:
    return {
        "uptrend": {
            "downtrend": 0.05,
            "ranging": 0.45,
            "vol_expansion": 0.35,
            "vol_contraction": 0.15,
        },
        "downtrend": {
            "uptrend": 0.05,
            "ranging": 0.55,
            "vol_expansion": 0.2,
            "vol_contraction": 0.2,
        },
        "ranging": {
            "uptrend": 0.15,
            "downtrend": 0.1,
            "vol_expansion": 0.3,
            "vol_contraction": 0.45,
        },
        "vol_expansion": {
            "uptrend": 0.1,
            "downtrend": 0.1,
            "ranging": 0.55,
            "vol_contraction": 0.25,
        },
        "vol_contraction": {
            "uptrend": 0.05,
            "downtrend": 0.05,
            "ranging": 0.7,
            "vol_expansion": 0.2,
        },
    }


class SyntheticConfig(BaseModel):
    """The whole market model (everything except length, clock, symbol and seed).

    ``transition_matrix`` is either a mapping ``{from: {to: p}}`` (missing entries are 0) or a
    list of rows in the order of ``regimes``; each row sums to 1 and its diagonal is 0. ``None``
    means "uniform over the other regimes". The defaults resemble BTC/USD hourly in 2017-2019.
    """

    model_config = ConfigDict(extra="forbid")

    start_price: float = Field(2500.0, gt=0, description="open of the first bar")
    regimes: dict[str, RegimeConfig] = Field(default_factory=_default_regimes)
    transition_matrix: dict[str, dict[str, float]] | list[list[float]] | None = Field(
        default_factory=_default_transitions
    )
    initial_regime: str | None = Field(
        None, description="first regime; None = drawn uniformly"
    )
    student_t_dof: float | None = Field(
        7.0,
        gt=2,
        description="Student-t degrees of freedom of the innovations; None = Gaussian",
    )
    max_shock: float | None = Field(
        20.0,
        gt=0,
        description="innovations are clipped to +/- this many standard deviations; None = never",
    )
    garch: GarchConfig | None = Field(default_factory=GarchConfig)
    volume_return_coupling: float = Field(
        0.3,
        ge=0,
        le=5,
        description="log-volume rises by this much per unit of |shock| above its mean",
    )

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        names = list(self.regimes)
        if not names:
            raise ValueError("regimes: at least one regime is required")
        if "transition_matrix" not in self.model_fields_set and set(names) != set(
            REGIME_NAMES
        ):
            self.transition_matrix = (
                None  # the default matrix is for the default regimes
            )
        if self.initial_regime is not None and self.initial_regime not in self.regimes:
            raise ValueError(
                f"initial_regime {self.initial_regime!r} is not one of regimes {names}"
            )
        self.transition_array()  # raises with a message naming transition_matrix
        return self

    @property
    def regime_names(self) -> list[str]:
        """Regime names in their configured order (the order of matrix rows and label codes)."""
        return list(self.regimes)

    def transition_array(self) -> np.ndarray:
        """The transition matrix as an ``(n, n)`` array in the order of ``regimes`` (validated)."""
        names = self.regime_names
        n = len(names)
        tm = self.transition_matrix
        if tm is None:
            if n == 1:
                return np.ones((1, 1))
            p = np.full((n, n), 1.0 / (n - 1))
            np.fill_diagonal(p, 0.0)
            return p
        if isinstance(tm, Mapping):
            p = _matrix_from_mapping(tm, names)
        else:
            p = np.asarray(tm, dtype=float)
            if p.shape != (n, n):
                raise ValueError(
                    f"transition_matrix must be {n}x{n} (one row and column per regime {names}), "
                    f"got shape {p.shape}"
                )
        for i, name in enumerate(names):
            _check_row(p[i], i, name, n)
        return p


ROW_SUM_TOLERANCE = 1e-6


def _matrix_from_mapping(
    tm: Mapping[str, Mapping[str, float]], names: list[str]
) -> np.ndarray:
    p = np.zeros((len(names), len(names)))
    for src, row in tm.items():
        if src not in names:
            raise ValueError(
                f"transition_matrix: row {src!r} is not one of regimes {names}"
            )
        for dst, prob in row.items():
            if dst not in names:
                raise ValueError(
                    f"transition_matrix[{src}]: column {dst!r} is not one of regimes {names}"
                )
            p[names.index(src), names.index(dst)] = prob
    return p


def _check_row(row: np.ndarray, i: int, name: str, n: int) -> None:
    if not np.all(np.isfinite(row)) or np.any(row < 0):
        raise ValueError(
            f"transition_matrix[{name}]: probabilities must be finite and >= 0"
        )
    if abs(row.sum() - 1.0) > ROW_SUM_TOLERANCE:
        raise ValueError(
            f"transition_matrix[{name}]: row must sum to 1, sums to {row.sum():.6g}"
        )
    if n > 1 and row[i] != 0:
        raise ValueError(
            f"transition_matrix[{name}][{name}] must be 0: how long a regime lasts is set by "
            "its duration range (min_bars/max_bars), not by self-transitions"
        )


# --------------------------------------------------------------------------------------------
# helpers


def ar1_filter(x: np.ndarray, phi: float, y0: float = 0.0) -> np.ndarray:
    """``y_t = phi * y_{t-1} + x_t`` with ``y_{-1} = y0``, for ``0 <= phi < 1``, in numpy.

    Closed form per block, ``y_t = phi^t (y0 + sum_k x_k phi^-k)``, with blocks short enough that
    ``phi^-k`` stays far from overflow; only the blocks are a Python loop. (scipy's ``lfilter``
    does the same job but importing scipy.signal costs seconds.)
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if phi == 0.0 or n == 0:
        return x.copy()  # nothing carries over
    # the block length does not depend on n: a longer input gives bit-identical leading values
    block = max(1, min(1 << 16, int(300.0 / -math.log(phi))))
    out = np.empty(n)
    powers = phi ** np.arange(block + 1)
    weights = 1.0 / powers[:block]  # phi^-k
    carry = y0
    for a in range(0, n, block):
        b = min(a + block, n)
        m = b - a
        seg = np.cumsum(x[a:b] * weights[:m])
        seg *= powers[:m]
        seg += carry * powers[1 : m + 1]
        out[a:b] = seg
        carry = out[b - 1]
    return out


def lagged_ar1(u: np.ndarray, phi: float) -> np.ndarray:
    """``h_t = phi * h_{t-1} + u_{t-1}``, ``h_0 = 0``: the AR(1) of *past* inputs."""
    h = np.zeros(len(u))
    if len(u) > 1:
        h[1:] = ar1_filter(u[:-1], phi)
    return h


def standardised_t_abs_mean(dof: float | None) -> float:
    """``E|z|`` for a unit-variance Student-t with ``dof`` degrees of freedom (Gaussian if None)."""
    if dof is None or not math.isfinite(dof):
        return math.sqrt(2.0 / math.pi)
    log_e = (
        math.log(2.0)
        + 0.5 * math.log(dof)
        + math.lgamma((dof + 1) / 2)
        - 0.5 * math.log(math.pi)
        - math.log(dof - 1)
        - math.lgamma(dof / 2)
    )
    return math.exp(log_e) * math.sqrt((dof - 2) / dof)


def draw_innovations(rng: np.random.Generator, n: int, dof: float | None) -> np.ndarray:
    """``n`` unit-variance innovations: Student-t(dof) scaled by ``sqrt((dof-2)/dof)`` or N(0,1)."""
    if dof is None:
        return rng.standard_normal(n)
    return rng.standard_t(dof, n) * math.sqrt((dof - 2.0) / dof)


@functools.lru_cache(maxsize=256)
def capped_abs_moments(dof: float | None, cap: float) -> tuple[float, float]:
    """Mean and variance of ``min(|z|, cap)`` for unit-variance Student-t(dof) (Gaussian if None).

    Numerical integration of the density on [0, cap] (the tail beyond contributes ``cap``).
    """
    x = np.linspace(0.0, cap, 4001)
    if dof is None:
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    else:
        log_c = (
            math.lgamma((dof + 1) / 2)
            - math.lgamma(dof / 2)
            - 0.5 * math.log(math.pi * (dof - 2))
        )
        pdf = np.exp(log_c - (dof + 1) / 2 * np.log1p(x * x / (dof - 2)))
    dx = x[1] - x[0]

    def integral(y: np.ndarray) -> float:
        return float(dx * (y.sum() - 0.5 * (y[0] + y[-1])))

    tail = max(1.0 - 2.0 * integral(pdf), 0.0)
    m1 = 2.0 * integral(x * pdf) + cap * tail
    m2 = 2.0 * integral(x * x * pdf) + cap * cap * tail
    return m1, max(m2 - m1 * m1, 0.0)


def shock_size(z: np.ndarray, dof: float | None, cap: float) -> np.ndarray:
    """``min(|z|, cap) - E[min(|z|, cap)]``: the zero-mean size of each shock, capped."""
    return np.minimum(np.abs(z), cap) - capped_abs_moments(dof, cap)[0]


def egarch_log_multiplier(
    z: np.ndarray, garch: GarchConfig, dof: float | None, h0: float = 0.0
) -> tuple[np.ndarray, float]:
    """Log-volatility ``h_t`` driven by past innovations, and its stationary variance.

    See :class:`GarchConfig`; shocks count up to ``impact_cap`` standard deviations (so one
    extreme Student-t draw cannot blow volatility up by orders of magnitude). ``h_0 = h0``
    (split between the components in proportion to their variances). The value for bar t uses
    innovations of bars < t only.
    """
    size = shock_size(z, dof, garch.impact_cap)
    sign = np.clip(z, -garch.impact_cap, garch.impact_cap)
    h = lagged_ar1(garch.alpha * size + garch.leverage * sign, garch.beta)
    if garch.slow_alpha > 0:
        h = h + lagged_ar1(garch.slow_alpha * size, garch.slow_beta)
    if h0 != 0.0:
        var_f, var_s = _component_variances(garch, dof)
        w = var_s / (var_f + var_s) if var_f + var_s > 0 else 0.0
        k = np.arange(len(z))
        h = h + h0 * ((1 - w) * garch.beta**k + w * garch.slow_beta**k)
    return h, egarch_stationary_variance(garch, dof)


def _component_variances(garch: GarchConfig, dof: float | None) -> tuple[float, float]:
    var_size = capped_abs_moments(dof, garch.impact_cap)[1]
    var_f = (garch.alpha**2 * var_size + garch.leverage**2) / (1.0 - garch.beta**2)
    var_s = garch.slow_alpha**2 * var_size / (1.0 - garch.slow_beta**2)
    return var_f, var_s


def egarch_stationary_variance(garch: GarchConfig, dof: float | None) -> float:
    """Stationary variance of the log-volatility ``h`` (innovations of unit variance)."""
    var_size = capped_abs_moments(dof, garch.impact_cap)[1]
    var_f, var_s = _component_variances(garch, dof)
    cov = (
        garch.alpha * garch.slow_alpha * var_size / (1.0 - garch.beta * garch.slow_beta)
    )
    return var_f + var_s + 2.0 * cov


def brownian_bridge_extremes(
    rng: np.random.Generator, log_ret: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log high and log low (relative to the open) of a Brownian bridge from 0 to ``log_ret``.

    Exact marginal draws: ``P(max > m) = exp(-2 m (m - b) / s^2)`` for ``m >= max(0, b)``.
    """
    n = len(log_ret)
    s2 = sigma * sigma
    b2 = log_ret * log_ret
    uv = 1.0 - rng.random(
        (n, 2)
    )  # (0, 1]; row by row, so a longer draw extends a shorter
    u, v = uv[:, 0], uv[:, 1]
    hi = 0.5 * (log_ret + np.sqrt(b2 - 2.0 * s2 * np.log(u)))
    lo = 0.5 * (log_ret - np.sqrt(b2 - 2.0 * s2 * np.log(v)))
    return hi, lo


_QUEUE_CHUNK = 256


def _regime_path(
    config: SyntheticConfig, n_bars: int, seed_seq: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """Segments of the semi-Markov chain: (regime index, full drawn length) per segment.

    Each regime has its own random stream and a queue of (length, next regime) pairs drawn
    from it in fixed chunks; the k-th visit to a regime uses the k-th pair. So the Python loop
    only follows indices, and the path does not depend on ``n_bars`` (a longer series extends
    a shorter one).
    """
    names = config.regime_names
    n = len(names)
    cum = np.cumsum(config.transition_array(), axis=1)
    cum[:, -1] = 1.0
    mins = [config.regimes[k].min_bars for k in names]
    spans = [config.regimes[k].max_bars - config.regimes[k].min_bars + 1 for k in names]
    init_seq, *regime_seqs = seed_seq.spawn(n + 1)
    r = (
        names.index(config.initial_regime)
        if config.initial_regime
        else int(np.random.default_rng(init_seq).integers(n))
    )
    streams = [np.random.default_rng(s) for s in regime_seqs]
    lengths: list[list[int]] = [[] for _ in range(n)]
    nexts: list[list[int]] = [[] for _ in range(n)]
    used = [0] * n
    seg_reg: list[int] = []
    seg_len: list[int] = []
    total = 0
    while total < n_bars:
        k = used[r]
        if k == len(lengths[r]):
            u = streams[r].random((_QUEUE_CHUNK, 2))
            lengths[r].extend(
                (mins[r] + (u[:, 0] * spans[r]).astype(np.int64)).tolist()
            )
            nxt = np.searchsorted(cum[r], u[:, 1], side="right")
            nexts[r].extend(np.minimum(nxt, n - 1).tolist())
        used[r] += 1
        seg_reg.append(r)
        seg_len.append(lengths[r][k])
        total += lengths[r][k]
        r = nexts[r][k]
    return np.asarray(seg_reg, dtype=np.int64), np.asarray(seg_len, dtype=np.int64)


def _ou_returns(  # noqa: PLR0913 - arrays of one vectorised step
    log_ret: np.ndarray,
    eps: np.ndarray,
    mu: np.ndarray,
    reg: np.ndarray,
    pos: np.ndarray,
    theta: np.ndarray,
) -> None:
    """Overwrite the returns of mean-reverting regimes with OU-around-a-moving-anchor returns.

    Per regime with ``theta > 0``: the deviation from the anchor ``d_t = (1-theta) d_{t-1} + eps_t``
    restarts at 0 at each segment start. One AR(1) filter over all of the regime's bars, then
    the carry-over from earlier segments is removed in closed form.
    """
    for k in np.flatnonzero(theta > 0):
        idx = np.flatnonzero(reg == k)
        if len(idx) == 0:
            continue
        phi = 1.0 - float(theta[k])
        big_d = ar1_filter(eps[idx], phi)
        j = np.arange(len(idx))
        seg0 = np.maximum.accumulate(np.where(pos[idx] == 0, j, 0))
        carry = np.where(seg0 > 0, big_d[np.maximum(seg0 - 1, 0)], 0.0)
        d = big_d - carry * phi ** (j - seg0 + 1)
        d_prev = np.zeros_like(d)
        d_prev[1:] = d[:-1]
        d_prev[j == seg0] = 0.0
        log_ret[idx] = mu[idx] + d - d_prev


def _volume(
    config: SyntheticConfig, reg: np.ndarray, z: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Lognormal volume around each regime's level, rising with the size of the shock."""
    regs = [config.regimes[k] for k in config.regime_names]
    vol_level = np.array([g.volume for g in regs])[reg]
    vol_noise = np.array([g.volume_noise for g in regs])[reg]
    log_v = (
        vol_noise * rng.standard_normal(len(reg))
        - 0.5 * vol_noise**2
        + config.volume_return_coupling
        * shock_size(z, config.student_t_dof, VOLUME_IMPACT_CAP)
    )
    return vol_level * np.exp(np.minimum(log_v, 50.0))


def _timestamps(
    n_bars: int, timeframe: str, start: str | pd.Timestamp
) -> pd.DatetimeIndex:
    step_s = timeframe_seconds(timeframe)
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    start_ns = int(ts.as_unit("ns").value)
    step_ns = step_s * 1_000_000_000
    if step_s < 7 * 86400 and start_ns % step_ns != 0:
        raise ValueError(
            f"start {str(start)!r} is not on the {timeframe} bar grid (bar open times are whole "
            f"multiples of {timeframe} since 1970-01-01 UTC)"
        )
    values = start_ns + np.arange(n_bars, dtype=np.int64) * step_ns
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")


# --------------------------------------------------------------------------------------------
# public API


def simulate(  # noqa: PLR0913 - the generator's documented keyword API
    config: SyntheticConfig,
    *,
    n_bars: int,
    timeframe: str = "1h",
    start: str | pd.Timestamp = "2020-01-01",
    symbol: str = "SYN",
    seed: int = 0,
) -> pd.DataFrame:
    """Generate ``n_bars`` bars from a validated :class:`SyntheticConfig`.

    Returns the tidy layout (``symbol, timeframe, timestamp, open, high, low, close, volume``)
    plus ``regime`` (categorical, categories in the order of ``config.regimes``). The same
    arguments and seed give an identical frame.
    """
    if (
        isinstance(n_bars, bool)
        or not isinstance(n_bars, int | np.integer)
        or n_bars < 1
    ):
        raise ValueError(f"n_bars must be a positive integer, got {n_bars!r}")
    n_bars = int(n_bars)
    timestamps = _timestamps(
        n_bars, timeframe, start
    )  # validates timeframe and start first
    # one independent stream per ingredient, so no draw depends on n_bars or on another's count
    path_seq, z_seq, h0_seq, bridge_seq, volume_seq = np.random.SeedSequence(
        seed
    ).spawn(5)
    names = config.regime_names
    regs = [config.regimes[k] for k in names]
    bars_per_year = bars_per_calendar_year(timeframe, YEAR_DAYS)

    seg_reg, seg_len = _regime_path(config, n_bars, path_seq)
    kept = seg_len.copy()
    kept[-1] -= int(seg_len.sum()) - n_bars
    reg = np.repeat(seg_reg, kept)
    seg_start = np.cumsum(kept) - kept
    pos = np.arange(n_bars) - np.repeat(seg_start, kept)
    frac = pos / np.repeat(np.maximum(seg_len - 1, 1), kept)

    mu = (np.array([g.drift for g in regs]) / bars_per_year)[reg]
    vol = np.array([g.volatility for g in regs]) / math.sqrt(bars_per_year)
    log_ramp = np.log(np.array([g.vol_ramp for g in regs]))
    sigma = vol[reg] * np.exp(log_ramp[reg] * (frac - 0.5))

    dof = config.student_t_dof
    z = draw_innovations(np.random.default_rng(z_seq), n_bars, dof)
    if config.max_shock is not None:
        np.clip(z, -config.max_shock, config.max_shock, out=z)
    g = config.garch
    if g is not None and (g.alpha > 0 or g.leverage != 0 or g.slow_alpha > 0):
        h0 = float(np.random.default_rng(h0_seq).standard_normal()) * math.sqrt(
            egarch_stationary_variance(config.garch, dof)
        )
        h, var_h = egarch_log_multiplier(z, config.garch, dof, h0=h0)
        sigma = sigma * np.exp(h - var_h)
    eps = sigma * z
    log_ret = mu + eps

    theta = np.array([g.mean_reversion for g in regs])
    _ou_returns(log_ret, eps, mu, reg, pos, theta)

    log_close = math.log(config.start_price) + np.cumsum(log_ret)
    close = np.exp(log_close)
    open_ = np.empty(n_bars)
    open_[0] = config.start_price
    open_[1:] = close[:-1]
    hi, lo = brownian_bridge_extremes(np.random.default_rng(bridge_seq), log_ret, sigma)
    high = np.maximum(open_ * np.exp(hi), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(lo), np.minimum(open_, close))

    volume = _volume(config, reg, z, np.random.default_rng(volume_seq))

    frame = pd.DataFrame(
        {
            "timestamp": timestamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "regime": pd.Categorical.from_codes(reg, categories=names),
        }
    )
    # scalar broadcast: fast, and the frame gets pandas' default string dtype
    frame.insert(0, "timeframe", timeframe)
    frame.insert(0, "symbol", symbol)
    return frame


def generate_market(
    *,
    n_bars: int,
    timeframe: str = "1h",
    start: str = "2020-01-01",
    symbol: str = "SYN",
    seed: int = 0,
    **config: Any,
) -> pd.DataFrame:
    """Generate a regime-switching market in the tidy OHLCV layout plus a ``regime`` column.

    Args:
        n_bars: number of bars.
        timeframe: bar length, e.g. ``"15m"``, ``"1h"``, ``"1d"``.
        start: open time of the first bar (UTC unless it carries a zone); must be on the grid.
        symbol: value of the ``symbol`` column.
        seed: seed of the numpy Generator; same arguments and seed give an identical frame.
        **config: the fields of :class:`SyntheticConfig` (``regimes``, ``transition_matrix``,
            ``student_t_dof``, ``garch``, ...), or ``config=<SyntheticConfig>``.

    Raises:
        ValueError (pydantic ``ValidationError`` for the model): naming the bad parameter.
    """
    if "config" in config and len(config) == 1:
        cfg = config["config"]
        cfg = (
            cfg
            if isinstance(cfg, SyntheticConfig)
            else SyntheticConfig.model_validate(cfg)
        )
    else:
        cfg = SyntheticConfig.model_validate(config)
    return simulate(
        cfg, n_bars=n_bars, timeframe=timeframe, start=start, symbol=symbol, seed=seed
    )


def check_market_kwargs(kwargs: dict[str, Any]) -> None:
    """Check the keyword arguments of :func:`generate_market` (a ``kind: synthetic`` ingest
    source's ``synthetic`` block) before a run: an unknown key or a bad model value fails
    naming it.

    Raises:
        ValueError: ``synthetic.<key>: ...``.
    """
    own = {"n_bars", "timeframe", "start", "symbol", "seed"}
    model = {k: v for k, v in kwargs.items() if k not in own}
    unknown = sorted(set(model) - set(SyntheticConfig.model_fields))
    if unknown:
        raise ValueError(
            f"synthetic.{unknown[0]}: generate_market takes no {unknown[0]!r}; "
            f"valid: {sorted(own | set(SyntheticConfig.model_fields))}"
        )
    try:
        SyntheticConfig.model_validate(model)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(
            f"synthetic.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        ) from None


# ``kind: synthetic`` ingest sources run this generator: market (the floor below) does not
# import synthetic, it is told here.
register_synthetic_source(
    SyntheticSource(check=check_market_kwargs, generate=generate_market)
)
