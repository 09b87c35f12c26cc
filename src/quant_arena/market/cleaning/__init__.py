"""Cleaning rules for tidy OHLCV bars: find each quirk, count it, repair or drop it, keep the row.

``clean_ohlcv(raw, config)`` takes bars in the tidy layout of :mod:`quant_arena.market.schema`
(any number of symbols and timeframes in one frame) and returns a :class:`CleanResult`:

* ``clean``: bars that pass :data:`~quant_arena.market.schema.CleanOHLCVSchema` (unique,
  increasing UTC timestamps on the bar grid, consistent OHLC, positive prices, volume >= 0),
  sorted by (symbol, timeframe, timestamp), with boolean ``is_filled`` and ``gap_before``.
* ``quarantine``: one row per (raw row, rule) that a rule dropped, changed or flagged, with the
  row's ORIGINAL values: ``symbol, timeframe, timestamp, rule, action, detail, open, high, low,
  close, volume``. ``action`` is ``dropped``, ``changed`` or ``flagged``. Nothing leaves the
  data without a quarantine row: ``len(raw) == (len(clean) - filled bars) + dropped rows``.
* ``report``: one row per (symbol, timeframe, rule) with ``count`` (what the rule found),
  ``dropped``, ``changed``, ``flagged``, ``filled``, ``bars_in``, ``bars_out`` and ``detail``.

The rules run in this order (the names are the ``rule`` values in quarantine and report):

==================== =====================================================================
rule                 what it finds, and what it does (the parameter block in CleanConfig)
==================== =====================================================================
timezone             makes timestamps UTC: naive stamps are read in ``source_timezone``;
                     for forex-like (24/5) series it checks that the week opens at 17:00
                     New York, the convention of UTC-stamped FX data
quote_side           bid/ask quoted series (``quote_side`` column or parameter): converted
                     to mid with ``spread_bps`` when known, otherwise kept and reported
missing_values       NaN / infinite prices (dropped), missing volume (set to 0 or dropped)
incomplete_bar       a bar that had opened but not closed when it was ingested (the
                     ``incomplete_bar`` flag set by ingest: open <= time of the run < open +
                     timeframe): its high, low, close and volume are not final, a look-ahead
                     trap (dropped, or flagged)
non_positive_prices  a price <= 0 (dropped)
negative_volume      volume < 0 (dropped, set to 0, or made positive)
off_grid             stamps off the timeframe's grid (snapped to it, or dropped)
out_of_order         rows stamped before the row above them: in the source file (the
                     ``out_of_order`` flag set by ingest) or in the input frame; newest-first
                     order counts the other way. The rows are sorted into time order
                     (``changed``, counted; the quarantine keeps their original stamps)
duplicates           rows with the same key: exact copies are dropped; conflicting rows keep
                     the first, the last, a merged bar, or none
repeated_bars        a traded bar whose OHLCV is identical to an earlier bar of the same
                     series a few bars before (a copy stamped at the wrong time)
ohlc_inconsistent    high < max(open, close), low > min(open, close), high < low
                     (repaired: high/low widened to cover open and close; or dropped)
unadjusted_splits    an overnight price jump close[t-1]/open[t] near a split ratio (2, 3,
                     1.5, 4, 7, 0.5 ...) that ``adj_close`` confirms or, without it, that
                     volume confirms and that does not revert; earlier prices are divided
                     and earlier volumes multiplied by the ratio
bad_ticks            a close that jumps (robust z of its log return against the median
                     absolute return of the previous ``window`` bars) and reverts on the next
                     bar without volume behind it, or a wick far outside the bar's typical
                     range (repaired from the neighbouring bars, dropped, or flagged)
outliers             other large robust-z returns (flagged only: real crashes stay)
zero_volume_flat     volume == 0 and open == high == low == close (flagged, dropped, or
                     marked ``is_filled``)
open_is_prev_close   open equals the previous bar's close exactly (counted; a share above
                     ``synthetic_share`` says the source builds opens from closes)
copy_series          two series of one timeframe whose returns are (near-)identical over
                     their overlap: the shorter one is the copy (flagged or dropped)
session_mismatch     bars stamped while the series' calendar says the market is closed
closed_market_gaps   missing bars the calendar expects (weekends, exchange holidays): counted
gaps                 other missing bars: up to ``max_fill_bars`` are filled with flat,
                     zero-volume bars (``is_filled``), longer gaps set ``gap_before`` on the
                     next real bar
funding_carried      perpetuals: the funding rate of a bar another rule dropped is charged
                     at the next kept bar of the series (never earlier: causal), flagged
                     there (a dropped duplicate of a kept bar that has its own rate is the
                     same event: not charged twice); a filled bar never carries funding or
                     mark prices
funding_missing      funding events missing from the series: a spacing between events of
                     more than 1.5 ``interval`` (configured, e.g. ``8h``, or the most common
                     spacing); the event after each hole is flagged, the detail says how
                     many events are missing
funding_outliers     rates outside +-``max_abs_rate`` per event (flagged, or clipped)
mark_deviation       mark-price candles far from the last price (``|mark_close / close - 1|
                     > max_rel_deviation``: flagged, or the bar's mark set to NaN so the
                     simulator uses the last-trade prices); a mark candle that is not a
                     candle (a price <= 0, high below open/close, low above) is always set to
                     NaN (changed)
==================== =====================================================================

Calendars (``CleanConfig.calendar``): ``24/7`` (crypto), ``24/5`` (forex: the week runs from
Sunday 17:00 to Friday 17:00 America/New_York, so it follows US daylight saving time) and
``exchange_days`` (weekdays minus exchange holidays, for daily equity bars). ``auto`` picks
24/7 unless a series has no Saturday bars, then ``exchange_days`` for daily and ``24/5`` for
intraday bars.

Cleaning is an offline step over a whole history: the bad-tick rule looks one bar ahead (a
spike is a spike because the next bar reverts it) and the split rule a few bars ahead. It is
vectorised with numpy: loops run over series and rules, never over rows.

Layout of the package: :mod:`~.config` (the parameters, :data:`RULES`), :mod:`~.engine` (the run's
state, the event log, the order of the rules, the schema check), :mod:`~.rules` (one module per
family: timestamps, prices, volume, copies, calendar, perp), :mod:`~.report` (the quarantine and
report tables, :func:`report_to_markdown`) and :mod:`~.arrays` (array helpers).
"""

from quant_arena.market.cleaning.config import (
    ACTIONS,
    QUARANTINE_COLUMNS,
    REPORT_COLUMNS,
    RULES,
    CleanConfig,
    CleanConfigError,
    parse_clean_config,
)
from quant_arena.market.cleaning.engine import clean_ohlcv
from quant_arena.market.cleaning.report import CleanResult, report_to_markdown

__all__ = [
    "ACTIONS",
    "QUARANTINE_COLUMNS",
    "REPORT_COLUMNS",
    "RULES",
    "CleanConfig",
    "CleanConfigError",
    "CleanResult",
    "clean_ohlcv",
    "parse_clean_config",
    "report_to_markdown",
]
