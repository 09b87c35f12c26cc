"""The cleaning rules, one module per family; each family is a mixin of the engine
(:class:`~quant_arena.market.cleaning.engine.Cleaner`) whose methods read and write the run's state."""

from quant_arena.market.cleaning.rules.calendar import CalendarRules
from quant_arena.market.cleaning.rules.copies import CopyRules
from quant_arena.market.cleaning.rules.perp import PerpRules
from quant_arena.market.cleaning.rules.prices import PriceRules
from quant_arena.market.cleaning.rules.timestamps import TimestampRules
from quant_arena.market.cleaning.rules.volume import VolumeRules

__all__ = [
    "CalendarRules",
    "CopyRules",
    "PerpRules",
    "PriceRules",
    "TimestampRules",
    "VolumeRules",
]
