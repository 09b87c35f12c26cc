"""``walk_forward.forecaster``: the supervised forecaster's parameters (a bad key fails naming it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ForecasterConfig"]


class ForecasterConfig(BaseModel):
    """An ensemble of ``n_models`` CNN+LSTM regressors fitted on a fold's training rows
    (:func:`quant_arena.forecast.fit_forecaster`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] | None = Field(
        None,
        description="input columns (already scaled); null = the fold's selected feature columns (scaled by the fold's scaler)",
    )
    returns_input: bool = Field(
        True,
        description="add the bar's log return (close to close, scaled by its training std) as an input channel",
    )
    window: int = Field(
        32,
        ge=2,
        description="bars of history in one input window (the prediction at bar t sees bars t-window+1..t)",
    )
    label: Literal["forward_return", "trend"] = Field(
        "forward_return",
        description="forward_return: log(close[t+h] / close[t]); trend: its sign (-1/0/+1, tanh output)",
    )
    horizon: int | None = Field(
        None,
        ge=1,
        description="label horizon h in bars; null = walk_forward.folds.label_horizon",
    )
    n_models: int = Field(
        3,
        ge=2,
        description="ensemble members (different seeds); the spread is their std",
    )
    conv_channels: int = Field(16, ge=1)
    kernel_size: int = Field(3, ge=1)
    lstm_hidden: int = Field(32, ge=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1.0e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_train_rows: int | None = Field(
        4000,
        ge=1,
        description="the most recent labelled training rows used; null = all",
    )
    seed: int = Field(
        0, ge=0, description="member k's torch seed derives from (seed, k)"
    )
    training_predictions: Literal["forward_chained", "in_sample"] = Field(
        "forward_chained",
        description="what the agents see on the TRAINING rows: forward_chained = out-of-sample predictions (the training "
        "window cut into chain_blocks blocks; block k predicted by an ensemble fitted on the blocks before it only, block 0 "
        "neutral), so the agent trains on a forecast as good as the one it meets out of sample; in_sample = the final "
        "ensemble's predictions of the rows it was fitted on (better than it will ever be out of sample)",
    )
    chain_blocks: int = Field(
        3, ge=2, description="blocks of the training window for forward_chained training predictions (chain_blocks - 1 extra fits)",
    )

    @model_validator(mode="after")
    def _kernel_fits(self) -> ForecasterConfig:
        if self.kernel_size > self.window:
            raise ValueError(
                f"forecaster.kernel_size = {self.kernel_size} exceeds forecaster.window = {self.window}"
            )
        return self
