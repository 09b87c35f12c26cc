"""The execution model: fills, fees, spread/slippage, impact, funding, margin and liquidation.

The public face of ``sim/`` (other packages import these names from ``quant_arena.sim``):

- :class:`MarketData`: the shared read-only arrays (built once from a tidy feature table).
- :class:`ExecutionConfig`: the validated execution parameters; :class:`KernelParams`: the one
  translation of a config into the numbers every kernel reads.
- :class:`Account`: the scalar kernel (one account, one bar per call) with an exact ledger.
- :class:`BatchAccounts`: the same kernel over N accounts at once, bit-identical to ``Account``.
- :class:`AccountArrays`: the state and context arrays behind both (``Account.arrays``,
  ``BatchAccounts.arrays``), which the compiled env steps and backtest loop run on.
- :class:`PortfolioData`, :class:`PortfolioAccount`: several assets from one cash balance.
- :mod:`compiled <quant_arena.sim.compiled>`: the compiled kernels, their memory layout and entry
  points (the env steps of ``envs/``, the backtest loop and trade attribution of ``evaluation/``).
"""

from quant_arena.sim import compiled
from quant_arena.sim._state import AccountArrays
from quant_arena.sim.batch import BatchAccounts
from quant_arena.sim.config import ExecutionConfig, KernelParams
from quant_arena.sim.kernel import LEDGER_FIELDS, Account
from quant_arena.sim.market_data import MarketData
from quant_arena.sim.portfolio import PortfolioAccount, PortfolioData

__all__ = [
    "LEDGER_FIELDS",
    "Account",
    "AccountArrays",
    "BatchAccounts",
    "ExecutionConfig",
    "KernelParams",
    "MarketData",
    "PortfolioAccount",
    "PortfolioData",
    "compiled",
]
