"""polars against the project's own path, where polars plausibly pays (issue 16, item 5).

``ours`` is the path the project runs today, ``peer`` the polars way of doing the same job, both
handing a pandas frame (or NumPy arrays) to the next stage as ours does (``to_pandas`` counted);
ratio = ours / polars (below 1: ours is faster). Stages:

- **csv_read**: a large 1-minute bar CSV (2,000,000 rows; 200,000 quick): the loader's pandas
  ``read_csv`` call (the C parser, the options of ``market.sources.loader._read_csv_text``)
  against ``pl.read_csv(...).to_pandas()``; and the whole file load (``market.load_file``: sniff,
  read, timestamp parsing, checks) for scale.
- **timestamps**: the text timestamps of that file to datetimes: the core call of
  ``market.parse_timestamps`` (``pd.to_datetime`` with the sniffed format) against polars'
  ``str.to_datetime``; the whole ``parse_timestamps`` (format choice, offsets, checks) for scale.
- **resample**: those bars to 1h OHLC: the feature builder's NumPy path (bucket starts,
  ``_segment_extreme``) against ``group_by_dynamic("1h")``; pandas ``resample`` for reference.
- **asof_join**: each 1-minute bar gets the last CLOSED 1h bar (multi-timeframe features): the
  builder's cumsum pick against ``join_asof`` on close times.
- **report_agg**: the walk-forward summary's per (kind, strategy, seed, fold) aggregation of the
  stitched out-of-sample returns (count, compounded return, mean, std, first equity), at a
  realistic size (28 runs x 4 folds x 2,000 bars) and a large one (x 20).

The polars results are checked equal to ours before timing (a benchmark of a different answer
would be no benchmark).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from benchmarks._common import Result, best_time
from quant_arena.features.builder import _segment_extreme
from quant_arena.market import load_file, parse_timestamps

H_NS = 3600 * 10**9
M_NS = 60 * 10**9


def _bars(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0, 8e-4, n)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 3e-4, n)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 3e-4, n)))
    ts = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", unit="ns")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": rng.gamma(2.0, 5.0, n),
        }
    )


# --------------------------------------------------------------------------- csv


def _csv(tmp: Path, n: int) -> Path:
    path = tmp / "bars_1m.csv"
    bars = _bars(n)
    bars["timestamp"] = bars["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    bars.to_csv(path, index=False, float_format="%.6f")
    return path


def _pandas_read(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep=",",
        skiprows=0,
        header=0,
        skip_blank_lines=False,
        on_bad_lines="error",
    )


def _polars_stamps(text: pd.Series, fmt: str) -> np.ndarray:
    return (
        pl.Series(text.to_numpy())
        .str.to_datetime(fmt, strict=False, time_unit="ns")
        .to_numpy()
    )


def _polars_read(path: Path) -> pd.DataFrame:
    return pl.read_csv(path, try_parse_dates=False).to_pandas()


# --------------------------------------------------------------------------- resample + as-of


def _ours_resample(
    ts_ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
):
    """The feature builder's higher-timeframe bars (features/builder.py) and the as-of pick."""
    bucket = ts_ns // H_NS
    new_bar = np.empty(ts_ns.size, dtype=bool)
    new_bar[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=new_bar[1:])
    starts = np.flatnonzero(new_bar)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = ts_ns.size - 1
    return (
        bucket[starts] * H_NS,
        o[starts],
        _segment_extreme(h, starts, np.maximum),
        _segment_extreme(lo, starts, np.minimum),
        c[ends],
        new_bar,
        bucket,
    )


def _ours_asof(
    ts_ns: np.ndarray, new_bar: np.ndarray, bucket: np.ndarray, hc: np.ndarray
) -> np.ndarray:
    pick = np.cumsum(new_bar, dtype=np.int64) - 1
    pick += (ts_ns - bucket * H_NS) >= H_NS - M_NS
    return np.r_[np.nan, hc][pick]


def _polars_resample(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by_dynamic(
        "timestamp", every="1h", closed="left", label="left"
    ).agg(
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
    )


def _polars_asof(frame: pl.DataFrame, hourly: pl.DataFrame) -> np.ndarray:
    left = frame.select(
        pl.col("timestamp"),
        (pl.col("timestamp") + pl.duration(minutes=1)).alias("close_time"),
    )
    right = hourly.select(
        (pl.col("timestamp") + pl.duration(hours=1)).alias("close_time"),
        pl.col("close").alias("h_close"),
    )
    return left.join_asof(right, on="close_time", strategy="backward")[
        "h_close"
    ].to_numpy()


# --------------------------------------------------------------------------- report aggregation


def _oos(n_runs: int, n_folds: int, bars: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = n_folds * bars
    frame = pd.DataFrame(
        {
            "strategy": np.repeat([f"s{i // 3}" for i in range(n_runs)], per),
            "kind": np.repeat(
                ["agent" if i % 2 else "baseline" for i in range(n_runs)], per
            ),
            "seed": np.repeat([i % 3 for i in range(n_runs)], per),
            "fold": np.tile(np.repeat(np.arange(n_folds), bars), n_runs),
            "return": rng.normal(0, 0.01, n_runs * per),
        }
    )
    frame["equity"] = (
        (1 + frame["return"])
        .groupby([frame["strategy"], frame["seed"], frame["kind"]])
        .cumprod()
    )
    return frame


KEYS = ["kind", "strategy", "seed", "fold"]


def _pandas_agg(oos: pd.DataFrame) -> pd.DataFrame:
    g = oos.assign(logret=np.log1p(oos["return"])).groupby(KEYS, sort=True)
    out = g.agg(
        n=("return", "size"),
        mean=("return", "mean"),
        std=("return", "std"),
        logret=("logret", "sum"),
        first_equity=("equity", "first"),
    )
    out["total_return"] = np.expm1(out.pop("logret"))
    return out.reset_index()


def _polars_agg(oos: pd.DataFrame) -> pd.DataFrame:
    out = (
        pl.from_pandas(oos)
        .group_by(KEYS)
        .agg(
            pl.len().alias("n"),
            pl.col("return").mean().alias("mean"),
            pl.col("return").std().alias("std"),
            pl.col("return").log1p().sum().alias("logret"),
            pl.col("equity").first().alias("first_equity"),
        )
        .sort(KEYS)
        .with_columns(pl.col("logret").exp().sub(1).alias("total_return"))
        .drop("logret")
    )
    return out.to_pandas()


# --------------------------------------------------------------------------- run


def run(quick: bool = False) -> list[Result]:
    n = 200_000 if quick else 2_000_000
    repeat = 1 if quick else 3
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = _csv(Path(tmp), n)
        a, b = _pandas_read(path), _polars_read(path)
        assert a.columns.tolist() == b.columns.tolist() and np.allclose(
            a[["open", "close"]], b[["open", "close"]]
        )
        t_pd, t_pl = (
            best_time(lambda: _pandas_read(path), repeat),
            best_time(lambda: _polars_read(path), repeat),
        )
        t_load = best_time(
            lambda: load_file(path, symbol="BTC/USD", timeframe="1m"), repeat
        )
        results.append(
            Result(
                "polars",
                f"csv_read {n:,} rows (s)",
                t_pd,
                "polars",
                t_pl,
                note=f"whole load_file: {t_load:.2f} s",
            )
        )
        text = a["timestamp"].astype(str)
        rows = np.arange(len(text)) + 2
        mine = parse_timestamps(text, rows=rows, file=path, column="timestamp")
        fmt = "%Y-%m-%d %H:%M:%S"
        assert np.array_equal(
            mine.dt.tz_localize(None).to_numpy(), _polars_stamps(text, fmt)
        )
        t_core = best_time(
            lambda: pd.to_datetime(text, format=fmt, errors="coerce"), repeat
        )
        t_pl = best_time(lambda: _polars_stamps(text, fmt), repeat)
        t_all = best_time(
            lambda: parse_timestamps(text, rows=rows, file=path, column="timestamp"),
            repeat,
        )
        results.append(
            Result(
                "polars",
                f"timestamps {n:,} texts (s)",
                t_core,
                "polars",
                t_pl,
                note=f"whole parse_timestamps: {t_all:.2f} s",
            )
        )

    bars = _bars(n)
    ts_ns = bars["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    frame = pl.from_pandas(bars)
    ours = _ours_resample(ts_ns, o, h, lo, c)
    hourly = _polars_resample(frame)
    for mine, theirs in zip(ours[1:5], ("open", "high", "low", "close"), strict=True):
        assert np.array_equal(mine, hourly[theirs].to_numpy())
    t_ours = best_time(lambda: _ours_resample(ts_ns, o, h, lo, c), repeat)
    t_pl = best_time(lambda: _polars_resample(frame), repeat)
    t_pd = best_time(
        lambda: bars.set_index("timestamp")
        .resample("1h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last"}),
        repeat,
    )
    results.append(
        Result(
            "polars",
            f"resample 1m->1h {n:,} bars (s)",
            t_ours,
            "polars",
            t_pl,
            note=f"pandas resample: {t_pd:.3f} s",
        )
    )

    *_, new_bar, bucket = ours
    mine = _ours_asof(ts_ns, new_bar, bucket, ours[4])
    assert np.array_equal(mine, _polars_asof(frame, hourly), equal_nan=True)
    t_ours = best_time(lambda: _ours_asof(ts_ns, new_bar, bucket, ours[4]), repeat)
    t_pl = best_time(lambda: _polars_asof(frame, hourly), repeat)
    results.append(
        Result("polars", f"asof_join 1h onto {n:,} 1m bars (s)", t_ours, "polars", t_pl)
    )

    for label, scale in (("realistic", 1), ("large", 1 if quick else 20)):
        oos = _oos(28, 4, 2000 * scale)
        a, b = _pandas_agg(oos), _polars_agg(oos)
        assert np.allclose(
            a[["n", "mean", "std", "total_return", "first_equity"]],
            b[["n", "mean", "std", "total_return", "first_equity"]],
        )
        t_pd, t_pl = (
            best_time(lambda oos=oos: _pandas_agg(oos), repeat),
            best_time(lambda oos=oos: _polars_agg(oos), repeat),
        )
        results.append(
            Result(
                "polars",
                f"report_agg {label} {len(oos):,} rows (s)",
                t_pd,
                "polars",
                t_pl,
            )
        )
    return results
