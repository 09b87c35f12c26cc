"""The execution model: fills, fees, spread/slippage, impact, funding, margin and liquidation.

- :class:`MarketData`: the shared read-only arrays (built once from a tidy feature table).
- :class:`ExecutionConfig`: the validated execution parameters.
- :class:`Account`: the scalar kernel (one account, one bar per call) with an exact ledger.
- :class:`BatchAccounts`: the same kernel over N accounts at once, bit-identical to ``Account``.
"""

from quant_arena.sim.batch import BatchAccounts
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.kernel import LEDGER_FIELDS, Account
from quant_arena.sim.market_data import MarketData

__all__ = ["LEDGER_FIELDS", "Account", "BatchAccounts", "ExecutionConfig", "MarketData"]
