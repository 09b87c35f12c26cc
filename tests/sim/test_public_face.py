"""sim/ and envs/ are used through their public faces, and one translation turns an
ExecutionConfig into the numbers every kernel reads."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import quant_arena.envs
import quant_arena.sim
from quant_arena.sim import (
    Account,
    AccountArrays,
    BatchAccounts,
    ExecutionConfig,
    KernelParams,
    PortfolioAccount,
    PortfolioData,
    compiled,
)
from tests._markets import sim_market

SRC = Path(__file__).resolve().parents[2] / "src" / "quant_arena"

#: KernelParams field -> (parameter matrix, row) of the account kernels' layout
ROWS = {
    "fee": ("P", compiled.P_FEE), "spm": ("P", compiled.P_SPM), "spc": ("P", compiled.P_SPC),
    "slip": ("P", compiled.P_SLIP), "impact": ("P", compiled.P_IMPACT), "cap": ("P", compiled.P_CAP),
    "cap_reject": ("PB", compiled.Q_CAP_REJECT), "frc": ("P", compiled.P_FRC), "bshort": ("P", compiled.P_BSHORT),
    "blev": ("P", compiled.P_BLEV), "swl": ("P", compiled.P_SWL), "sws": ("P", compiled.P_SWS),
    "mm": ("P", compiled.P_MM), "lfee": ("P", compiled.P_LFEE), "allow_gap": ("PB", compiled.Q_ALLOW_GAP),
    "max_exposure": ("P", compiled.P_MAXEXP), "use_spread_series": ("PB", compiled.Q_USE_SP),
    "use_funding_series": ("PB", compiled.Q_USE_FR),
}
CONFIGS = [
    ExecutionConfig(),
    ExecutionConfig(taker_fee=0.001, maker_fee=0.0002, spread_bps=3.0, spread_scale=1.7, slippage_bps=2.0,
                    impact_coef=0.1, participation_cap=0.3, cap_mode="reject", funding_rate=1e-5,
                    borrow_rate_short=2e-5, borrow_rate_leverage=3e-5, swap_long=-1e-5, swap_short=2e-6,
                    max_leverage=5.0, maintenance_margin=0.05, liquidation_fee=0.01, allow_fill_across_gap=True),
    ExecutionConfig(liquidity="maker", maker_fee=0.0003, taker_fee=0.002, spread_scale=2.0, use_spread_series=False,
                    use_funding_series=False, max_leverage=3.0, initial_margin=0.5),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_kernel_reads_the_one_translation_of_the_config(config: ExecutionConfig) -> None:
    k = config.kernel_params()
    assert isinstance(k, KernelParams) and set(KernelParams._fields) == set(ROWS)
    data = sim_market(np.random.default_rng(0), 50)  # has spread and funding series
    acc, batch = Account(data, config), BatchAccounts(data, 3, config)
    assert isinstance(acc.arrays, AccountArrays) and isinstance(batch.arrays, AccountArrays)
    for name, (matrix, row) in ROWS.items():
        want = getattr(k, name)
        assert getattr(acc.arrays, matrix)[row, 0] == want, name
        assert (getattr(batch.arrays, matrix)[row] == want).all(), name
    port = PortfolioAccount(PortfolioData.from_assets([data, data]), config)
    got = {name: getattr(port, "_" + name) for name in ROWS if name not in ("max_exposure", "use_spread_series", "use_funding_series")}
    assert got == {name: getattr(k, name) for name in got}
    assert port.max_exposure == k.max_exposure
    assert (port._sp is None) == (not k.use_spread_series) and (port._fr is None) == (not k.use_funding_series)


def test_the_faces_export_what_other_packages_use() -> None:
    for name in ("Account", "AccountArrays", "BatchAccounts", "ExecutionConfig", "KernelParams", "LEDGER_FIELDS",
                 "MarketData", "PortfolioAccount", "PortfolioData", "compiled"):
        assert name in quant_arena.sim.__all__ and hasattr(quant_arena.sim, name), name
    for name in ("EnvConfig", "TradingEnvConfig", "PortfolioEnvConfig", "ArenaEnvConfig", "REWARD_COMPONENTS",
                 "TradingEnv", "TradingVecEnv", "PortfolioEnv", "ArenaEnv", "ArenaSingleAgentEnv"):
        assert name in quant_arena.envs.__all__ and hasattr(quant_arena.envs, name), name


def _private_imports(path: Path, package: str, root: Path = SRC) -> list[str]:
    """Imports in ``path`` of a ``_private`` module or name of ``quant_arena.<package>``."""
    prefix = f"quant_arena.{package}"
    hits = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods, names = [node.module], [a.name for a in node.names]
        else:
            continue
        for mod in mods:
            if mod != prefix and not mod.startswith(prefix + "."):
                continue
            parts = mod.split(".")[2:]
            if any(p.startswith("_") for p in parts) or (mod == prefix and any(n.startswith("_") for n in names)):
                hits.append(f"{path.relative_to(root)}:{node.lineno} imports {mod} {names}")
    return hits


@pytest.mark.parametrize("package", ["sim", "envs"])
def test_no_other_package_imports_a_private_name_of_sim_or_envs(package: str) -> None:
    outside = [f for f in sorted(SRC.rglob("*.py")) if f.relative_to(SRC).parts[0] != package]
    assert [hit for f in outside for hit in _private_imports(f, package)] == []


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from quant_arena.sim import _state\nfrom quant_arena.envs._episodes import EpisodePlan\n"
                     "from quant_arena.sim import MarketData\nimport quant_arena.envs.config\n")
    assert _private_imports(probe, "sim", tmp_path) == ["probe.py:1 imports quant_arena.sim ['_state']"]
    assert _private_imports(probe, "envs", tmp_path) == ["probe.py:2 imports quant_arena.envs._episodes ['EpisodePlan']"]
