"""The CNN+LSTM ensemble: fitting on a purged training window, causal prediction, features."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from quant_arena.forecast.config import ForecasterConfig
from quant_arena.market.errors import DataError

__all__ = [
    "FORECAST_COLUMNS",
    "Forecaster",
    "fit_forecaster",
    "forecast_columns",
    "rank_ic",
    "training_rows",
]

#: The observation columns an agent with ``forecast_features: true`` gets (mean, spread).
FORECAST_COLUMNS: tuple[str, str] = ("f_forecast_mean", "f_forecast_spread")
#: Rows per forward pass in :meth:`Forecaster.predict`; batches are aligned to absolute row
#: positions and padded to this size, so a row's prediction never depends on the frame's length.
_CHUNK = 512


class _Net(nn.Module):
    """Conv1d over the window -> LSTM over the convolution's outputs -> linear head (last step)."""

    def __init__(self, n_inputs: int, config: ForecasterConfig) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_inputs, config.conv_channels, config.kernel_size)
        self.lstm = nn.LSTM(config.conv_channels, config.lstm_hidden, batch_first=True)
        self.head = nn.Linear(config.lstm_hidden, 1)
        self.trend = config.label == "trend"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, window, inputs)
        h = torch.relu(
            self.conv(x.transpose(1, 2))
        )  # (batch, channels, window - kernel + 1)
        out, _ = self.lstm(h.transpose(1, 2))
        y = self.head(out[:, -1]).squeeze(-1)
        return torch.tanh(y) if self.trend else y


@contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _member_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


@dataclass
class Forecaster:
    """A fitted ensemble: its members, the input columns and the input/label scales (fitted on the
    training rows), and ``meta`` (what it saw: rows, last label row, timings, training losses)."""

    config: ForecasterConfig
    columns: list[str]
    horizon: int
    members: list[nn.Module]
    returns_scale: float
    label_scale: float
    meta: dict[str, Any] = field(default_factory=dict)

    def inputs(self, frame: pd.DataFrame) -> np.ndarray:
        """The (rows, inputs) float32 input matrix of ``frame``: row t uses bar t (and t-1 for the
        return) only; NaN -> 0 (the columns are scaled: 0 is the training centre)."""
        return _inputs(
            frame, self.columns, self.config.returns_input, self.returns_scale
        )

    def members_predict(self, frame: pd.DataFrame) -> np.ndarray:
        """(members, rows) predictions in label units; NaN for the first ``window - 1`` rows."""
        x = self.inputs(frame)
        w, n = self.config.window, len(x)
        out = np.full((len(self.members), n), np.nan)
        if n < w:
            return out
        windows = np.lib.stride_tricks.sliding_window_view(x, w, axis=0).transpose(
            0, 2, 1
        )  # (n-w+1, w, F), row t -> t-w+1
        with _one_thread(), torch.no_grad():
            for start in range(0, len(windows), _CHUNK):
                part = windows[start : start + _CHUNK]
                batch = np.zeros((_CHUNK, w, x.shape[1]), dtype=np.float32)
                batch[: len(part)] = part
                t = torch.from_numpy(batch)
                for k, m in enumerate(self.members):
                    out[k, w - 1 + start : w - 1 + start + len(part)] = (
                        m(t).numpy()[: len(part)].astype(np.float64)
                    )
        return out * self.label_scale

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) per row of ``frame``: the members' mean prediction and their standard
        deviation (ddof 0); the value at row t uses rows ``<= t`` only; NaN for the first
        ``window - 1`` rows."""
        preds = self.members_predict(frame)
        return preds.mean(axis=0), preds.std(axis=0)


def _inputs(
    frame: pd.DataFrame,
    columns: Sequence[str],
    returns_input: bool,
    returns_scale: float,
) -> np.ndarray:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"forecaster: input columns {missing} are not in the frame (forecaster.columns)",
            rule="missing_columns",
        )
    parts = [frame[list(columns)].to_numpy(dtype=np.float64)]
    if returns_input:
        parts.append((_log_returns(frame) / returns_scale)[:, None])
    x = np.concatenate(parts, axis=1)
    return np.clip(
        np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), -20.0, 20.0
    ).astype(np.float32)


def _log_returns(frame: pd.DataFrame) -> np.ndarray:
    close = frame["close"].to_numpy(dtype=np.float64)
    out = np.full(len(close), np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def training_rows(
    train_start: int,
    train_stop: int,
    window: int,
    horizon: int,
    max_rows: int | None = None,
) -> np.ndarray:
    """The rows t fitted on: a full input window inside ``[train_start, train_stop)`` and a label
    inside it too (``t + horizon <= train_stop - 1``: the last ``horizon`` training rows carry no
    label), the most recent ``max_rows`` of them."""
    rows = np.arange(train_start + window - 1, train_stop - horizon)
    if max_rows is not None:
        rows = rows[-max_rows:]
    return rows


def fit_forecaster(
    frame: pd.DataFrame,
    columns: Sequence[str],
    train_stop: int,
    config: ForecasterConfig,
    seed: int = 0,
    *,
    train_start: int = 0,
    horizon: int | None = None,
) -> Forecaster:
    """Fit the ensemble on rows ``[train_start, train_stop)`` of ``frame`` (only those rows are
    read: inputs, the return scale and the labels). ``columns``: the (scaled) input columns;
    ``horizon`` wins over ``config.horizon``; member k is seeded from ``(config.seed + seed, k)``
    (torch, one thread): the same arguments give the same ensemble.

    Raises:
        ValueError: naming ``forecaster.window`` / ``horizon`` when the training window leaves no
            labelled row.
    """
    t0 = time.perf_counter()
    h = int(horizon if horizon is not None else (config.horizon or 1))
    part = frame.iloc[train_start:train_stop].reset_index(drop=True)
    n = len(part)
    rows = training_rows(0, n, config.window, h, config.max_train_rows)
    if len(rows) < 2:
        raise ValueError(
            f"forecaster: the training window ({n} rows) leaves {len(rows)} labelled rows with forecaster.window = "
            f"{config.window} and horizon = {h}; lower them"
        )
    r = _log_returns(part)
    r_std = float(np.nanstd(r[1:])) if n > 2 else 1.0
    returns_scale = r_std if np.isfinite(r_std) and r_std > 0 else 1.0
    x = _inputs(part, columns, config.returns_input, returns_scale)
    close = part["close"].to_numpy(dtype=np.float64)
    fwd = np.log(
        close[rows + h] / close[rows]
    )  # rows + h <= n - 1: inside the training window
    if config.label == "trend":
        y, label_scale = np.sign(fwd), 1.0
    else:
        s = float(np.std(fwd))
        label_scale = s if np.isfinite(s) and s > 0 else 1.0
        y = fwd / label_scale
    windows = np.lib.stride_tricks.sliding_window_view(
        x, config.window, axis=0
    ).transpose(0, 2, 1)
    xs = torch.from_numpy(np.ascontiguousarray(windows[rows - config.window + 1]))
    ys = torch.from_numpy(y.astype(np.float32))
    members, losses = [], []
    with _one_thread():
        for k in range(config.n_models):
            s = _member_seed(config.seed + int(seed), k)
            torch.manual_seed(s)
            net = _Net(x.shape[1], config)
            opt = torch.optim.Adam(
                net.parameters(),
                lr=config.learning_rate,
                weight_decay=config.weight_decay,
            )
            gen = torch.Generator().manual_seed(s)
            loss = torch.tensor(float("nan"))
            for _ in range(config.epochs):
                order = torch.randperm(len(xs), generator=gen)
                for b in range(0, len(xs), config.batch_size):
                    idx = order[b : b + config.batch_size]
                    opt.zero_grad()
                    loss = nn.functional.mse_loss(net(xs[idx]), ys[idx])
                    loss.backward()
                    opt.step()
            net.eval()
            members.append(net)
            losses.append(float(loss.detach()))
    ts = part["timestamp"] if "timestamp" in part.columns else None
    meta = {
        "forecaster_train_start": int(train_start),
        "forecaster_train_stop": int(train_stop),
        "forecaster_rows": int(len(rows)),
        "forecaster_first_row": int(train_start + rows[0]),
        "forecaster_last_row": int(train_start + rows[-1]),
        "forecaster_last_label_row": int(train_start + rows[-1] + h),
        "forecaster_last_label_timestamp": pd.Timestamp(ts.iloc[rows[-1] + h])
        if ts is not None
        else None,
        "forecaster_horizon": h,
        "forecaster_label": config.label,
        "forecaster_inputs": [
            *columns,
            *(["log_return"] if config.returns_input else []),
        ],
        "forecaster_final_losses": losses,
        "forecaster_seconds": float(time.perf_counter() - t0),
    }
    return Forecaster(
        config, list(columns), h, members, returns_scale, label_scale, meta
    )


def chained_training_predictions(
    frame: pd.DataFrame,
    columns: Sequence[str],
    train_start: int,
    train_stop: int,
    config: ForecasterConfig,
    seed: int = 0,
    *,
    horizon: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Out-of-sample (mean, spread) of the training rows ``[train_start, train_stop)``, forward
    chained: the window is cut into ``config.chain_blocks`` equal blocks; block ``k >= 1`` is
    predicted by an ensemble fitted (:func:`fit_forecaster`, same seed, labels purged) on rows
    ``[train_start, start of block k)`` only; block 0, and a block whose history leaves no
    labelled row, stay NaN (neutral once scaled). A value at row t uses rows ``<= t`` only, and
    no ensemble predicts a row it was fitted on. Also returns what was fitted (``meta``)."""
    n = int(train_stop) - int(train_start)
    bounds = [
        int(train_start) + (n * k) // config.chain_blocks
        for k in range(config.chain_blocks + 1)
    ]
    mean = np.full(n, np.nan)
    spread = np.full(n, np.nan)
    fitted_blocks: list[list[int]] = []
    for k in range(1, config.chain_blocks):
        b0, b1 = bounds[k], bounds[k + 1]
        try:
            model = fit_forecaster(
                frame,
                columns,
                b0,
                config,
                seed,
                train_start=int(train_start),
                horizon=horizon,
            )
        except ValueError:  # too little history before this block: it stays neutral
            continue
        m, s = model.predict(frame.iloc[:b1])
        mean[b0 - train_start : b1 - train_start] = m[b0:b1]
        spread[b0 - train_start : b1 - train_start] = s[b0:b1]
        fitted_blocks.append([b0, b1])
    meta = {
        "forecaster_training_predictions": "forward_chained",
        "forecaster_chained_blocks": fitted_blocks,
    }
    return mean, spread, meta


def forecast_columns(
    forecaster: Forecaster,
    frame: pd.DataFrame,
    train_start: int,
    train_stop: int,
    stats: dict[str, tuple[float, float]] | None = None,
    training_predictions: tuple[np.ndarray, np.ndarray] | None = None,
    predictions: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[float, float]]]:
    """``f_forecast_mean`` and ``f_forecast_spread`` of every row of ``frame``, scaled
    ``(x - center) / scale`` with ``stats`` or, without them, the mean and std of the rows
    ``[train_start, train_stop)`` (the training rows). ``training_predictions`` (mean, spread of
    the training rows, e.g. :func:`chained_training_predictions`) replace the forecaster's own
    (in-sample) predictions of those rows. NaN values (the first ``window - 1`` rows, rows without
    an out-of-sample prediction) get 0, the training mean: a neutral value. ``predictions``: the
    forecaster's own ``predict(frame)`` when the caller already has it (read, not changed). Also
    returns the ``{column: (center, scale)}`` used."""
    if predictions is None:
        mean, spread = forecaster.predict(frame)
    else:
        mean, spread = (np.array(p, dtype=np.float64) for p in predictions)
    if training_predictions is not None:
        mean[train_start:train_stop], spread[train_start:train_stop] = (
            training_predictions
        )
    out, used = {}, {}
    for name, values in zip(FORECAST_COLUMNS, (mean, spread), strict=True):
        if stats is not None:
            center, scale = stats[name]
        else:
            train = values[train_start:train_stop]
            train = train[np.isfinite(train)]
            center = float(train.mean()) if train.size else 0.0
            scale = float(train.std()) if train.size else 1.0
            scale = scale if np.isfinite(scale) and scale > 0 else 1.0
        out[name] = np.nan_to_num((values - center) / scale, nan=0.0)
        used[name] = (float(center), float(scale))
    return pd.DataFrame(out, index=frame.index), used


def rank_ic(
    frame: pd.DataFrame,
    predictions: np.ndarray,
    start: int,
    stop: int,
    horizon: int,
) -> tuple[float, int]:
    """The rank information coefficient of ``predictions`` (one value per row of ``frame``) on
    the rows ``t`` of ``[start, stop)`` whose realised forward return ``log(close[t + horizon] /
    close[t])`` lies inside ``[start, stop)`` too: the Spearman correlation between the two over
    those rows with a finite prediction, and how many rows that is (NaN below 3 rows or with a
    constant prediction)."""
    close = frame["close"].to_numpy(dtype=np.float64)
    rows = np.arange(int(start), int(stop) - int(horizon))
    pred = np.asarray(predictions, dtype=np.float64)[rows] if len(rows) else np.empty(0)
    realised = (
        np.log(close[rows + int(horizon)] / close[rows]) if len(rows) else np.empty(0)
    )
    ok = np.isfinite(pred) & np.isfinite(realised)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), n
    a = pd.Series(pred[ok]).rank().to_numpy()
    b = pd.Series(realised[ok]).rank().to_numpy()
    if a.std() == 0.0 or b.std() == 0.0:
        return float("nan"), n
    return float(np.corrcoef(a, b)[0, 1]), n
