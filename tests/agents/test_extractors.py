"""Feature extractors: shapes for any window, causality of the per-step outputs, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch.nn import functional as F

from quant_arena.agents.extractors import (
    CAUSAL_EXTRACTORS,
    EXTRACTORS,
    CausalConv1d,
    CNNExtractor,
    MambaExtractor,
    TCNExtractor,
    get_extractor,
    parse_observation_space,
    selective_scan,
)

# Small sizes keep every test quick; defaults are exercised by the shape test.
SMALL = {
    "mlp": {"hidden": (16,)},
    "cnn": {"channels": (8, 8)},
    "lstm": {"hidden_size": 8},
    "tcn": {"channels": 8},
    "tcn_transformer": {"d_model": 8, "n_heads": 2, "dim_feedforward": 16},
    "mamba": {"d_model": 8, "d_state": 4},
}


def dict_space(window: int, n_features: int, n_account: int = 6) -> spaces.Dict:
    return spaces.Dict(
        {
            "market": spaces.Box(-np.inf, np.inf, (window, n_features), np.float32),
            "account": spaces.Box(-np.inf, np.inf, (n_account,), np.float32),
        }
    )


def batch(space: spaces.Dict, n: int, seed: int = 0) -> dict[str, th.Tensor]:
    g = th.Generator().manual_seed(seed)
    return {k: th.randn((n, *s.shape), generator=g) for k, s in space.spaces.items()}


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@pytest.mark.parametrize(("window", "n_features"), [(1, 1), (7, 3), (30, 12)])
def test_output_shape_for_any_window_and_feature_count(name: str, window: int, n_features: int) -> None:
    th.manual_seed(0)
    space = dict_space(window, n_features)
    ext = EXTRACTORS[name](space, features_dim=24)
    out = ext(batch(space, 5))
    assert ext.features_dim == 24
    assert out.shape == (5, 24)
    assert th.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_default_kwargs_and_bare_market_box(name: str) -> None:
    """Defaults build; a 2-D Box (market window without account) is accepted too."""
    th.manual_seed(0)
    box = spaces.Box(-np.inf, np.inf, (20, 4), np.float32)
    ext = EXTRACTORS[name](box)
    out = ext(th.randn(3, 20, 4))
    assert out.shape == (3, ext.features_dim)


@pytest.mark.parametrize("name", CAUSAL_EXTRACTORS)
def test_sequence_output_at_t_ignores_later_steps(name: str) -> None:
    """Change steps t+1.. of the window: per-step outputs for steps <= t must not move."""
    th.manual_seed(1)
    window, n_features = 24, 3
    ext = EXTRACTORS[name](dict_space(window, n_features), features_dim=8, **SMALL[name]).eval()
    market = th.randn(4, window, n_features)
    with th.no_grad():
        base = ext.sequence_forward(market)
        assert base.shape == (4, window, ext.sequence_dim)
        for t in (0, 5, 11, window - 2):
            changed = market.clone()
            changed[:, t + 1 :] = th.randn(4, window - t - 1, n_features) * 10
            out = ext.sequence_forward(changed)
            th.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-5)
            # ... and the test can see a change: later steps did move.
            assert not th.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_non_causal_cnn_is_seen_by_the_causality_check() -> None:
    """The check above has teeth: symmetric padding lets step t see step t+1."""
    th.manual_seed(0)
    ext = CNNExtractor(dict_space(10, 2), features_dim=8, causal=False).eval()
    market = th.randn(2, 10, 2)
    changed = market.clone()
    changed[:, 6:] += 5.0
    with th.no_grad():
        assert not th.allclose(ext.sequence_forward(changed)[:, :6], ext.sequence_forward(market)[:, :6])


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_gradients_reach_every_parameter(name: str) -> None:
    th.manual_seed(0)
    space = dict_space(12, 3)
    ext = EXTRACTORS[name](space, features_dim=8, **SMALL[name])
    ext(batch(space, 6)).pow(2).sum().backward()
    missing = [n for n, p in ext.named_parameters() if p.grad is None or not th.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("name", [n for n in EXTRACTORS if n != "mlp"])
def test_account_state_reaches_the_features(name: str) -> None:
    th.manual_seed(0)
    space = dict_space(8, 2)
    ext = EXTRACTORS[name](space, features_dim=8, **SMALL[name]).eval()
    obs = batch(space, 3)
    other = {"market": obs["market"], "account": obs["account"] + 3.0}
    with th.no_grad():
        assert not th.allclose(ext(obs), ext(other))


def test_tcn_receptive_field_covers_the_window_by_default() -> None:
    for window in (1, 5, 20, 60, 100):
        ext = TCNExtractor(dict_space(window, 2), features_dim=4)
        assert ext.receptive_field >= window
    # The first bar of the window influences the summary (last step).
    th.manual_seed(0)
    ext = TCNExtractor(dict_space(40, 2), features_dim=4).eval()
    market = th.randn(1, 40, 2)
    changed = market.clone()
    changed[:, 0] += 5.0
    with th.no_grad():
        assert not th.allclose(ext.sequence_forward(market)[:, -1], ext.sequence_forward(changed)[:, -1])


@pytest.mark.parametrize(("kernel_size", "dilation", "groups"), [(3, 1, 1), (3, 2, 1), (2, 8, 1), (4, 1, 4)])
def test_causal_conv_equals_a_left_padded_torch_conv(kernel_size: int, dilation: int, groups: int) -> None:
    th.manual_seed(0)
    conv = CausalConv1d(4, 8, kernel_size, dilation, groups=groups)
    x = th.randn(3, 4, 17, requires_grad=True)
    expected = F.conv1d(F.pad(x, ((kernel_size - 1) * dilation, 0)), conv.weight, conv.bias, dilation=dilation, groups=groups)
    out = conv(x)
    th.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert conv.weight.grad is not None and x.grad is not None


def test_parallel_and_sequential_scans_agree() -> None:
    g = th.Generator().manual_seed(0)
    for length in (1, 2, 7, 33):
        decay = th.rand(3, length, 5, 4, generator=g)
        inputs = th.randn(3, length, 5, 4, generator=g)
        th.testing.assert_close(selective_scan(decay, inputs, "parallel"), selective_scan(decay, inputs, "sequential"), rtol=1e-5, atol=1e-5)
    space = dict_space(16, 3)
    th.manual_seed(0)
    par = MambaExtractor(space, features_dim=8, scan="parallel").eval()
    seq = MambaExtractor(space, features_dim=8, scan="sequential").eval()
    seq.load_state_dict(par.state_dict())
    obs = batch(space, 4)
    with th.no_grad():
        th.testing.assert_close(par(obs), seq(obs), rtol=1e-5, atol=1e-5)


def test_registry_and_errors_name_the_problem() -> None:
    assert set(EXTRACTORS) == {"mlp", "cnn", "lstm", "tcn", "tcn_transformer", "mamba"}
    assert get_extractor("TCN") is TCNExtractor
    with pytest.raises(ValueError, match="extractor: unknown extractor 'gru'"):
        get_extractor("gru")
    with pytest.raises(ValueError, match="'market' key"):
        parse_observation_space(spaces.Dict({"prices": spaces.Box(0, 1, (3, 2))}))
    with pytest.raises(ValueError, match="unexpected Dict keys"):
        parse_observation_space(spaces.Dict({"market": spaces.Box(0, 1, (3, 2)), "news": spaces.Box(0, 1, (4,))}))
    with pytest.raises(ValueError, match="2-D Box"):
        TCNExtractor(spaces.Box(0, 1, (10,)))
    with pytest.raises(ValueError, match="features_dim"):
        TCNExtractor(dict_space(5, 2), features_dim=0)
    with pytest.raises(ValueError, match="d_model: must be divisible by n_heads"):
        EXTRACTORS["tcn_transformer"](dict_space(5, 2), d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="scan: unknown method"):
        MambaExtractor(dict_space(5, 2), scan="fft")
    with pytest.raises(ValueError, match="activation: unknown activation"):
        EXTRACTORS["lstm"](dict_space(5, 2), activation="swishy")
