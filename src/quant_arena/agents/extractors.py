"""Torch feature extractors for the trading observation.

Every extractor is a Stable-Baselines3 ``BaseFeaturesExtractor`` for the ``Dict`` observation of
``TradingEnv``::

    {"market": Box(window, n_features) float32,   # oldest bar first, current bar last
     "account": Box(n_account,) float32}

(``account`` is optional; a bare 2-D ``Box(window, n_features)`` observation is accepted too, as a
market window without account state.) ``window``, ``n_features`` and ``n_account`` are read from
the observation space, so one class works for any window length and feature set; the output size
is the constructor's ``features_dim``.

Registered names (:data:`EXTRACTORS`):

``mlp``
    Flatten market and account, then an MLP. No notion of time.
``cnn``
    1-D convolutions over time (features are channels), flattened. ``causal=True`` (the default)
    pads on the left only, so the per-step map at step t sees steps <= t.
``lstm``
    An LSTM over the window; the last step's hidden state summarises it.
``tcn``
    A temporal convolutional network: residual blocks of dilated *causal* convolutions (left
    padding only) with dilations 1, 2, 4, ...; by default just enough levels for the receptive
    field to cover the window.
``tcn_transformer``
    A TCN front end, sinusoidal positional encoding, a Transformer encoder with a causal attention
    mask, and an account-state MLP; the last step's encoding and the account embedding are
    concatenated.
``mamba``
    *Experimental.* A small selective state-space (Mamba-style) block in plain torch:
    input-dependent step size ``dt`` and matrices ``B``/``C``, a causal depthwise convolution, a
    gated output, and a sequential scan (default: a fused loop over the window, fastest on CPU for
    windows of tens of bars) or a parallel one (Hillis-Steele, log2(window) vectorised steps; it
    materialises (batch, window, d_inner, d_state) tensors and measured ~2-5x slower on CPU here).

Time: each extractor summarises the window ending at the current bar; the window holds only past
bars, so that summary is causal by construction. The sequence extractors additionally expose
``sequence_forward(market) -> (batch, window, hidden)``, whose output at step t depends only on
steps <= t (tested by changing later steps); ``forward`` uses the last step of it.

Weights: SB3's ``ortho_init`` re-initialises every ``nn.Linear`` inside an on-policy policy's
extractor (weights orthogonal, biases zero). Parameters whose initial value matters (the Mamba
step-size bias, ``A_log``, ``D``) are therefore plain ``nn.Parameter``s, not ``Linear`` biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ACTIVATIONS",
    "CAUSAL_EXTRACTORS",
    "EXTRACTORS",
    "CNNExtractor",
    "LSTMExtractor",
    "MLPExtractor",
    "MambaExtractor",
    "SelectiveSSM",
    "TCNExtractor",
    "TCNTransformerExtractor",
    "get_extractor",
    "parse_observation_space",
    "selective_scan",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def _activation(name: str) -> type[nn.Module]:
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(f"activation: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def parse_observation_space(observation_space: spaces.Space) -> tuple[int, int, int]:
    """``(window, n_features, n_account)`` of a Dict(market, account) or 2-D Box space, or a ValueError saying why not."""
    if isinstance(observation_space, spaces.Box):
        market, account = observation_space, None
    elif isinstance(observation_space, spaces.Dict):
        keys = set(observation_space.spaces)
        if "market" not in keys:
            raise ValueError(f"observation space: a Dict observation needs a 'market' key, got keys {sorted(keys)}")
        unexpected = keys - {"market", "account"}
        if unexpected:
            raise ValueError(
                f"observation space: unexpected Dict keys {sorted(unexpected)}; these extractors read only "
                "'market' (window x features) and 'account' (vector) and would silently ignore the rest"
            )
        market, account = observation_space["market"], observation_space.spaces.get("account")
    else:
        raise ValueError(f"observation space: expected Dict(market, account) or a 2-D Box, got {observation_space}")
    if not isinstance(market, spaces.Box) or len(market.shape) != 2:
        raise ValueError(f"observation space: 'market' must be a 2-D Box (window, n_features), got {market}")
    n_account = 0
    if account is not None:
        if not isinstance(account, spaces.Box) or len(account.shape) != 1:
            raise ValueError(f"observation space: 'account' must be a 1-D Box, got {account}")
        n_account = int(account.shape[0])
    window, n_features = (int(d) for d in market.shape)
    if window < 1 or n_features < 1:
        raise ValueError(f"observation space: empty market window {market.shape}")
    return window, n_features, n_account


def _split(observations: th.Tensor | dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor | None]:
    if isinstance(observations, dict):
        return observations["market"], observations.get("account")
    return observations, None


def _mlp(sizes: Sequence[int], activation: type[nn.Module], last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


class _WindowExtractor(BaseFeaturesExtractor):
    """Shared plumbing: parse the space, embed the account vector, fuse with a head.

    Subclasses build ``self.encoder`` and implement :meth:`sequence_forward` (per-step outputs of
    width ``self.sequence_dim``) or override :meth:`summarise`.
    """

    def __init__(self, observation_space: spaces.Space, features_dim: int, account_dim: int, activation: str) -> None:
        super().__init__(observation_space, _positive("features_dim", features_dim))
        self.window, self.n_features, self.n_account = parse_observation_space(observation_space)
        self._act = _activation(activation)
        self.account_dim = _positive("account_dim", account_dim) if self.n_account else 0
        self.account_net = _mlp([self.n_account, self.account_dim], self._act) if self.n_account else None

    def _build_head(self, market_dim: int) -> None:
        self.head = nn.Sequential(nn.Linear(market_dim + self.account_dim, self.features_dim), self._act())

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        """Per-step outputs ``(batch, window, sequence_dim)`` for a market tensor ``(batch, window, n_features)``."""
        raise NotImplementedError

    def summarise(self, market: th.Tensor) -> th.Tensor:
        """The market part of the feature: the last step's output (the window ends at the current bar)."""
        return self.sequence_forward(market)[:, -1]

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        market, account = _split(observations)
        parts = [self.summarise(market)]
        if self.account_net is not None:
            parts.append(self.account_net(account))
        return self.head(th.cat(parts, dim=-1))


class MLPExtractor(BaseFeaturesExtractor):
    """Flatten every part of the observation and apply an MLP (``hidden`` layers, then ``features_dim``).

    Works with any Box or Dict-of-Box observation (no notion of time, so no causality test applies).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        hidden: Sequence[int] = (128,),
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, _positive("features_dim", features_dim))
        if isinstance(observation_space, spaces.Dict):
            self._keys = sorted(observation_space.spaces)
            boxes = [observation_space[k] for k in self._keys]
        else:
            self._keys = []
            boxes = [observation_space]
        for b in boxes:
            if not isinstance(b, spaces.Box):
                raise ValueError(f"observation space: the mlp extractor needs Box parts, got {b}")
        n_in = sum(math.prod(b.shape) for b in boxes)
        sizes = [n_in, *[_positive("hidden", h) for h in hidden], self.features_dim]
        self.net = _mlp(sizes, _activation(activation))

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        if isinstance(observations, dict):
            flat = th.cat([observations[k].flatten(1) for k in self._keys], dim=1)
        else:
            flat = observations.flatten(1)
        return self.net(flat)


class CausalConv1d(nn.Conv1d):
    """``Conv1d`` over ``(batch, channels, time)`` padded on the left only: output t sees inputs <= t.

    Dilated convolutions (``dilation > 1``, ``groups == 1``) are computed as one matrix product over
    the stacked, shifted inputs instead of torch's CPU dilated kernel (``slow_conv_dilated2d``, about
    10x slower at these sizes). Same weights, same result as ``nn.Conv1d`` (tested).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, padding=0, **kwargs)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: th.Tensor) -> th.Tensor:
        x = F.pad(x, (self.left_pad, 0))
        d, k = self.dilation[0], self.kernel_size[0]
        if d == 1 or self.groups != 1:
            return super().forward(x)
        length = x.shape[-1] - self.left_pad
        taps = th.stack([x[:, :, j * d : j * d + length] for j in range(k)], dim=2)  # (B, C_in, k, T)
        out = th.matmul(self.weight.reshape(self.out_channels, -1), taps.flatten(1, 2))  # (B, C_out, T)
        return out if self.bias is None else out + self.bias[:, None]


class CNNExtractor(_WindowExtractor):
    """1-D CNN over time: ``channels`` conv layers (features are input channels), flattened.

    ``causal=True`` pads on the left only so the conv map at step t depends on steps <= t;
    ``causal=False`` uses symmetric ("same") padding. Either way the flattened map covers only the
    observed window, i.e. past bars.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        channels: Sequence[int] = (32, 32),
        kernel_size: int = 3,
        causal: bool = True,
        account_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, features_dim, account_dim, activation)
        if not channels:
            raise ValueError("channels: need at least one conv layer")
        kernel_size = _positive("kernel_size", kernel_size)
        self.causal = bool(causal)
        layers: list[nn.Module] = []
        c_in = self.n_features
        for width in channels:
            c = _positive("channels", width)
            conv = CausalConv1d(c_in, c, kernel_size) if self.causal else nn.Conv1d(c_in, c, kernel_size, padding="same")
            layers += [conv, self._act()]
            c_in = c
        self.encoder = nn.Sequential(*layers)
        self.sequence_dim = c_in
        self._build_head(c_in * self.window)

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        return self.encoder(market.transpose(1, 2)).transpose(1, 2)

    def summarise(self, market: th.Tensor) -> th.Tensor:
        return self.sequence_forward(market).flatten(1)


class LSTMExtractor(_WindowExtractor):
    """An LSTM over the window (oldest bar first); the last step's top-layer hidden state is the summary."""

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        account_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, features_dim, account_dim, activation)
        self.encoder = nn.LSTM(
            self.n_features,
            _positive("hidden_size", hidden_size),
            num_layers=_positive("num_layers", num_layers),
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.sequence_dim = hidden_size
        self._build_head(hidden_size)

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        out, _ = self.encoder(market)
        return out


class TemporalBlock(nn.Module):
    """TCN residual block: two dilated causal convolutions, activation and dropout, plus a skip path."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int, dropout: float, activation: type[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(
            CausalConv1d(c_in, c_out, kernel_size, dilation),
            activation(),
            nn.Dropout(dropout),
            CausalConv1d(c_out, c_out, kernel_size, dilation),
            activation(),
            nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.out_act = activation()

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.out_act(self.net(x) + self.skip(x))


def tcn_receptive_field(kernel_size: int, levels: int) -> int:
    """Bars seen by the last output of a TCN with dilations 1, 2, ..., 2**(levels-1) (two convs per block)."""
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


def _levels_to_cover(window: int, kernel_size: int) -> int:
    levels = 1
    while tcn_receptive_field(kernel_size, levels) < window:
        levels += 1
    return levels


class TCN(nn.Module):
    """Stack of :class:`TemporalBlock` with dilations 2**i, on ``(batch, channels, time)``."""

    def __init__(self, c_in: int, channels: int, levels: int, kernel_size: int, dropout: float, activation: type[nn.Module]) -> None:
        super().__init__()
        blocks = []
        for i in range(levels):
            blocks.append(TemporalBlock(c_in if i == 0 else channels, channels, kernel_size, 2**i, dropout, activation))
        self.blocks = nn.Sequential(*blocks)
        self.receptive_field = tcn_receptive_field(kernel_size, levels)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.blocks(x)


class TCNExtractor(_WindowExtractor):
    """Temporal convolutional network (dilated causal convolutions, left padding only).

    ``levels=None`` picks the fewest levels whose receptive field covers the window, so the last
    step (the summary) sees every bar of the observation.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        channels: int = 32,
        kernel_size: int = 3,
        levels: int | None = None,
        dropout: float = 0.0,
        account_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, features_dim, account_dim, activation)
        kernel_size = _positive("kernel_size", kernel_size)
        if kernel_size < 2:
            raise ValueError("kernel_size: a TCN needs kernel_size >= 2")
        levels = _levels_to_cover(self.window, kernel_size) if levels is None else _positive("levels", levels)
        self.encoder = TCN(self.n_features, _positive("channels", channels), levels, kernel_size, dropout, self._act)
        self.receptive_field = self.encoder.receptive_field
        self.sequence_dim = channels
        self._build_head(channels)

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        return self.encoder(market.transpose(1, 2)).transpose(1, 2)


def sinusoidal_positions(length: int, d_model: int) -> th.Tensor:
    """The Transformer paper's fixed positional encoding, ``(length, d_model)``."""
    position = th.arange(length, dtype=th.float32).unsqueeze(1)
    div = th.exp(th.arange(0, d_model, 2, dtype=th.float32) * (-math.log(10_000.0) / d_model))
    pe = th.zeros(length, d_model)
    pe[:, 0::2] = th.sin(position * div)
    pe[:, 1::2] = th.cos(position * div[: d_model // 2])
    return pe


class TCNTransformerExtractor(_WindowExtractor):
    """TCN front end -> positional encoding -> causal Transformer encoder, plus an account MLP.

    The TCN (``tcn_levels`` blocks, ``d_model`` channels) extracts local patterns; fixed sinusoidal
    positions are added; a pre-norm Transformer encoder with a causal (upper-triangular) attention
    mask relates the steps, so step t attends to steps <= t only. The last step's encoding is
    concatenated with the account embedding and projected to ``features_dim``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        d_model: int = 32,
        tcn_levels: int = 2,
        kernel_size: int = 3,
        n_heads: int = 4,
        n_layers: int = 2,
        dim_feedforward: int = 64,
        dropout: float = 0.0,
        account_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, features_dim, account_dim, activation)
        d_model = _positive("d_model", d_model)
        if d_model % _positive("n_heads", n_heads):
            raise ValueError(f"d_model: must be divisible by n_heads ({d_model} % {n_heads} != 0)")
        if d_model % 2:
            raise ValueError(f"d_model: must be even for the sinusoidal positional encoding, got {d_model}")
        self.tcn = TCN(self.n_features, d_model, _positive("tcn_levels", tcn_levels), _positive("kernel_size", kernel_size), dropout, self._act)
        self.register_buffer("positions", sinusoidal_positions(self.window, d_model), persistent=False)
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(self.window), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=_positive("dim_feedforward", dim_feedforward),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, _positive("n_layers", n_layers), norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.sequence_dim = d_model
        self._build_head(d_model)

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        x = self.tcn(market.transpose(1, 2)).transpose(1, 2) + self.positions
        return self.transformer(x, mask=self.causal_mask, is_causal=True)


def selective_scan(decay: th.Tensor, inputs: th.Tensor, method: str = "parallel") -> th.Tensor:
    """Solve ``h[t] = decay[t] * h[t-1] + inputs[t]`` with ``h[-1] = 0`` along dim 1.

    ``method="sequential"`` loops over time; ``"parallel"`` is a Hillis-Steele inclusive scan with
    the associative operator ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)``: ceil(log2 T) vectorised
    steps, numerically stable because it only multiplies decays in (0, 1]. Both give the same
    result up to float rounding (tested).
    """
    if method == "sequential":
        h = th.zeros_like(inputs[:, 0])
        out = []
        for t in range(inputs.shape[1]):
            h = decay[:, t] * h + inputs[:, t]
            out.append(h)
        return th.stack(out, dim=1)
    if method != "parallel":
        raise ValueError(f"scan: unknown method {method!r}; choose 'parallel' or 'sequential'")
    a, b = decay, inputs
    offset, length = 1, inputs.shape[1]
    while offset < length:
        b = th.cat([b[:, :offset], a[:, offset:] * b[:, :-offset] + b[:, offset:]], dim=1)
        a = th.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return b


class SelectiveSSM(nn.Module):
    """One Mamba-style mixer (experimental): ``(batch, time, d_model) -> (batch, time, d_model)``.

    in-projection to ``x`` and gate ``z`` -> causal depthwise conv + SiLU on ``x`` ->
    input-dependent ``dt`` (softplus), ``B`` and ``C`` -> discretised diagonal SSM
    ``h[t] = exp(dt A) h[t-1] + dt B[t] x[t]``, ``y[t] = C[t] h[t] + D x[t]`` -> ``y * SiLU(z)``
    -> out-projection. Plain torch, no custom kernels: fine for windows of tens of bars.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        scan: str = "sequential",
    ) -> None:
        super().__init__()
        if scan not in ("parallel", "sequential"):
            raise ValueError(f"scan: unknown method {scan!r}; choose 'parallel' or 'sequential'")
        self.scan = scan
        d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank or max(1, math.ceil(d_model / 16))
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv = CausalConv1d(d_inner, d_inner, d_conv, groups=d_inner)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=False)
        # Step sizes start log-uniform in [dt_min, dt_max] (Mamba's init): bias = softplus^-1(dt).
        dt = th.exp(th.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.dt_bias = nn.Parameter(dt + th.log(-th.expm1(-dt)))
        # S4D-real init: A = -(1, 2, ..., d_state) for every channel, stored as log(-A).
        self.A_log = nn.Parameter(th.log(th.arange(1, d_state + 1, dtype=th.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(th.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, u: th.Tensor) -> th.Tensor:
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, T, d_inner) each
        x = F.silu(self.conv(x.transpose(1, 2)).transpose(1, 2))
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt) + self.dt_bias)  # (B, T, d_inner)
        A = -th.exp(self.A_log)  # (d_inner, d_state)
        if self.scan == "sequential":
            # Fused loop: never materialises (B, T, d_inner, d_state) tensors; the faster choice on CPU.
            dx = dt * x
            h = x.new_zeros(x.shape[0], x.shape[2], self.d_state)
            ys = []
            for t in range(x.shape[1]):
                h = th.exp(dt[:, t, :, None] * A) * h + dx[:, t, :, None] * B[:, t, None, :]
                ys.append(th.bmm(h, C[:, t, :, None]).squeeze(-1))
            y = th.stack(ys, dim=1)
        else:
            decay = th.exp(dt.unsqueeze(-1) * A)  # (B, T, d_inner, d_state), in (0, 1)
            drive = (dt * x).unsqueeze(-1) * B.unsqueeze(2)
            y = (selective_scan(decay, drive, "parallel") * C.unsqueeze(2)).sum(-1)
        return self.out_proj((y + self.D * x) * F.silu(z))


class _MambaLayer(nn.Module):
    def __init__(self, d_model: int, **ssm_kwargs) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mixer = SelectiveSSM(d_model, **ssm_kwargs)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.mixer(self.norm(x))


class MambaExtractor(_WindowExtractor):
    """*Experimental* selective state-space (Mamba-style) extractor in plain torch.

    Linear embedding of the features -> ``n_layers`` pre-norm residual :class:`SelectiveSSM`
    layers -> LayerNorm; the last step plus the account embedding go to the head. Causal: the
    convolution is left-padded and the scan runs forward in time.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        d_model: int = 32,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        n_layers: int = 1,
        dt_rank: int | None = None,
        scan: str = "sequential",
        account_dim: int = 32,
        activation: str = "relu",
    ) -> None:
        super().__init__(observation_space, features_dim, account_dim, activation)
        d_model = _positive("d_model", d_model)
        self.embed = nn.Linear(self.n_features, d_model)
        self.layers = nn.Sequential(
            *[
                _MambaLayer(
                    d_model,
                    d_state=_positive("d_state", d_state),
                    d_conv=_positive("d_conv", d_conv),
                    expand=_positive("expand", expand),
                    dt_rank=dt_rank,
                    scan=scan,
                )
                for _ in range(_positive("n_layers", n_layers))
            ]
        )
        self.norm = nn.LayerNorm(d_model)
        self.sequence_dim = d_model
        self._build_head(d_model)

    def sequence_forward(self, market: th.Tensor) -> th.Tensor:
        return self.norm(self.layers(self.embed(market)))


EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {
    "mlp": MLPExtractor,
    "cnn": CNNExtractor,
    "lstm": LSTMExtractor,
    "tcn": TCNExtractor,
    "tcn_transformer": TCNTransformerExtractor,
    "mamba": MambaExtractor,
}

#: Extractors whose ``sequence_forward`` output at step t depends on steps <= t only
#: (``cnn`` with its default ``causal=True``).
CAUSAL_EXTRACTORS: tuple[str, ...] = ("cnn", "lstm", "tcn", "tcn_transformer", "mamba")


def get_extractor(name: str) -> type[BaseFeaturesExtractor]:
    """The extractor class registered under ``name`` (case-insensitive), or a ValueError listing the names."""
    try:
        return EXTRACTORS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"extractor: unknown extractor {name!r}; choose one of {sorted(EXTRACTORS)}") from None
