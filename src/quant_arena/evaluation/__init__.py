"""Evaluation: the backtest runner on the ``sim/`` kernel, metrics, walk-forward fold schedules,
Monte Carlo, overfitting statistics, regimes, stress episodes and "did it learn?" (no Kedro here).

- :mod:`~quant_arena.evaluation.metrics`: THE metrics (Sharpe, Sortino, CAGR, drawdown, ...)
  and the block bootstrap; bars per year come from :mod:`quant_arena.market.calendars`;
- :mod:`~quant_arena.evaluation.backtest`: :func:`run_policy`, :func:`run_targets`,
  :func:`evaluate_strategies`, the look-ahead check;
- :mod:`~quant_arena.evaluation.folds`: :func:`make_folds` (purge, embargo, expanding/rolling);
- :mod:`~quant_arena.evaluation.montecarlo`, :mod:`~quant_arena.evaluation.overfitting`
  (PSR, DSR, PBO), :mod:`~quant_arena.evaluation.regimes`,
  :mod:`~quant_arena.evaluation.stress_eval`, :mod:`~quant_arena.evaluation.did_it_learn`;
- :mod:`~quant_arena.evaluation.league`: arena matches and the league table (ratings with
  bootstrap uncertainty).

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`). ``walk_forward.py`` and
``tuned.py`` are not part of this face: they move to ``quant_arena.study``.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    # portfolio
    "run_portfolio_policy": "portfolio",
    "run_portfolio_targets": "portfolio",
    # backtest
    "LEDGER_COLUMNS": "backtest",
    "BacktestResult": "backtest",
    "LookaheadReport": "backtest",
    "evaluate_strategies": "backtest",
    "lookahead_check": "backtest",
    "run_policy": "backtest",
    "run_targets": "backtest",
    "run_targets_batch": "backtest",
    "trades_from_ledger": "backtest",
    # did_it_learn
    "CONSTANT_EXPOSURES": "did_it_learn",
    "CONSTANT_SHARE": "did_it_learn",
    "CONSTANT_TOLERANCE": "did_it_learn",
    "REFERENCE_COLUMNS": "did_it_learn",
    "ConstantChoice": "did_it_learn",
    "choose_constant": "did_it_learn",
    "constant_label": "did_it_learn",
    "constant_policy_share": "did_it_learn",
    "did_it_learn": "did_it_learn",
    "run_constants": "did_it_learn",
    "stitch_references": "did_it_learn",
    # folds
    "Fold": "folds",
    "FoldConfig": "folds",
    "Length": "folds",
    "Window": "folds",
    "count_folds": "folds",
    "latest_fold": "folds",
    "make_folds": "folds",
    "parse_length": "folds",
    "plot_schedule": "folds",
    "schedule_table": "folds",
    "test_positions": "folds",
    # metrics
    "METRIC_NAMES": "metrics",
    "TRADE_COLUMNS": "metrics",
    "SharpeCI": "metrics",
    "block_bootstrap_indices": "metrics",
    "bootstrap_block_length": "metrics",
    "bootstrap_sharpe_ci": "metrics",
    "bootstrap_sharpe_draws": "metrics",
    "cagr": "metrics",
    "compute_metrics": "metrics",
    "compute_metrics_table": "metrics",
    "drawdown_series": "metrics",
    "equity_from_returns": "metrics",
    "interval_quantiles": "metrics",
    "max_drawdown": "metrics",
    "sharpe_ratio": "metrics",
    "sortino_ratio": "metrics",
    # league (arena matches, Bradley-Terry league table)
    "bradley_terry": "league",
    "league_table": "league",
    "match_windows": "league",
    "pairwise_results": "league",
    "run_match": "league",
    "run_matches": "league",
    # montecarlo
    "MonteCarloResult": "montecarlo",
    "bootstrap_returns": "montecarlo",
    "monte_carlo_table": "montecarlo",
    "path_statistics": "montecarlo",
    "TRADE_UNIT_COLUMNS": "montecarlo",
    "reshuffle_trades": "montecarlo",
    "trade_units": "montecarlo",
    # overfitting
    "DSRResult": "overfitting",
    "PBOResult": "overfitting",
    "deflated_sharpe_ratio": "overfitting",
    "expected_max_sharpe": "overfitting",
    "probabilistic_sharpe_ratio": "overfitting",
    "probability_of_backtest_overfitting": "overfitting",
    "psr_from_moments": "overfitting",
    "sample_moments": "overfitting",
    # regimes
    "REGIMES": "regimes",
    "REGIME_METRICS": "regimes",
    "RegimeConfig": "regimes",
    "label_regimes": "regimes",
    "metrics_by_regime": "regimes",
    "regime_features": "regimes",
    # stress_eval
    "EPISODE_COLUMNS": "stress_eval",
    "scenario_episodes": "stress_eval",
    "stress_episodes": "stress_eval",
    "stress_summary": "stress_eval",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
