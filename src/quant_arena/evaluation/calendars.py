"""Moved: the trading calendars and annualisation live in :mod:`quant_arena.market.calendars`.

This module only re-exports them for the experiment files the study branch is moving
(``evaluation/walk_forward.py``, ``tuning/objective.py``, ``pipelines/train_rl/nodes.py``); delete it
once they import :mod:`quant_arena.market.calendars`.
"""

from quant_arena.market.calendars import (  # noqa: F401
    CALENDARS,
    MARKET_CALENDARS,
    Calendar,
    MarketCalendar,
    bar_days,
    get_calendar,
    periods_per_year,
)
