"""After the study: scheduled retraining and what runs a model between retrains (library code:
no Kedro here).

- :mod:`~quant_arena.ops.notify`: alerts (Telegram Bot API, generic JSON webhook);
  :func:`make_notifier` builds a :class:`Notifier` whose ``send`` never raises and never shows
  a secret.
- :mod:`~quant_arena.ops.drift`: per-feature PSI and KS, return/volatility regime and the
  champion's decay (rolling Sharpe), gathered by :func:`drift_report`.
- :mod:`~quant_arena.ops.bundle`: :class:`ModelBundle`, everything one trained agent needs to run
  alone (SB3 zip, ONNX policy, scaler, feature columns, env config, data span, code version,
  metrics), :func:`save_bundle` / :func:`load_bundle`, and :func:`bundle_actions` (its
  deterministic policy through the studies' own fold unit);
- :mod:`~quant_arena.ops.mlflow_runs`: one MLflow child run per fold x strategy x seed of a
  walk-forward study under the ``kedro run``'s run (:func:`study_child_runs`, :func:`log_child_runs`);
- :mod:`~quant_arena.ops.registry`: :class:`ModelRegistry`, MLflow's Model Registry with the
  ``champion`` / ``challenger`` aliases, promotion by compare-and-set under the lock, history and
  rollback (``python -m quant_arena.ops.registry rollback --model NAME [--to N]``);
- :mod:`~quant_arena.ops.lock`: the promotion lock in the registry's database (stale holders
  taken over).
- :mod:`~quant_arena.ops.promotion`: the promotion rule (guardrails + a statistical criterion).
- :mod:`~quant_arena.ops.retrain`: one retrain: the newest fold, the champion's check (drift,
  decay), the challenger trained with the study's fold unit, judged, registered and promoted.
- :mod:`~quant_arena.ops.breakers`: circuit breakers (maximum drawdown, daily loss, VaR(95),
  maximum leverage): :class:`CircuitBreakers` checks one bar at a time and is rebuilt from the
  paper ledger after a restart; :func:`check_breakers` replays a whole record.
- :mod:`~quant_arena.ops.paper`: paper trading: :class:`PaperTrader` runs a registered model on
  bars as they close (replayed or polled) with the backtest's env and kernel, its ONNX policy and
  the breakers; :mod:`~quant_arena.ops.paper_store`: its state database (:class:`PaperStore`,
  one transaction per bar).
- :mod:`~quant_arena.ops.paper_report`: the daily paper-trading report and summary, against the
  backtest of the same model on the same bars (:func:`paper_daily_report`,
  :func:`paper_summary`, :func:`paper_report_markdown`).

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`): sending a failure alert
does not import scipy, MLflow or torch, and ``python -m quant_arena.ops.registry`` does not import
the registry module twice. Add a name here as ``"Name": "module"``.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    # notify
    "EVENT_KINDS": "notify",
    "Event": "notify",
    "NotifyConfig": "notify",
    "Notifier": "notify",
    "TelegramConfig": "notify",
    "WebhookConfig": "notify",
    "make_notifier": "notify",
    # drift
    "PSI_EPSILON": "drift",
    "DriftConfig": "drift",
    "DriftReport": "drift",
    "decay": "drift",
    "drift_report": "drift",
    "feature_drift": "drift",
    "ks": "drift",
    "psi": "drift",
    "regime_drift": "drift",
    "rolling_sharpe": "drift",
    # bundle
    "BUNDLE_FILES": "bundle",
    "BundleError": "bundle",
    "ModelBundle": "bundle",
    "bundle_actions": "bundle",
    "code_version": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    # mlflow_runs
    "CHILD_KEYS": "mlflow_runs",
    "ChildRun": "mlflow_runs",
    "child_key": "mlflow_runs",
    "ensemble_tags": "mlflow_runs",
    "log_child_runs": "mlflow_runs",
    "log_parent_tearsheets": "mlflow_runs",
    "tearsheet_uri": "mlflow_runs",
    "TEARSHEET_FOLDER": "mlflow_runs",
    "study_child_runs": "mlflow_runs",
    "TunedRun": "mlflow_runs",
    "tuned_run": "mlflow_runs",
    # lock
    "LOCK_TABLE": "lock",
    "FileLock": "lock",
    "LockError": "lock",
    "LockTimeout": "lock",
    "SqlLock": "lock",
    "lock_location": "lock",
    "pid_alive": "lock",
    "promotion_lock": "lock",
    # registry
    "ARTIFACT_PATH": "registry",
    "CHALLENGER": "registry",
    "CHAMPION": "registry",
    "HISTORY_COLUMNS": "registry",
    "HISTORY_TAG": "registry",
    "ModelRegistry": "registry",
    "RegistryError": "registry",
    # promotion
    "Candidate": "promotion",
    "Decision": "promotion",
    "Guardrails": "promotion",
    "PromotionConfig": "promotion",
    "decide": "promotion",
    "sharpe_difference_ci": "promotion",
    # retrain
    "ChampionCheck": "retrain",
    "RetrainConfig": "retrain",
    "RetrainOutcome": "retrain",
    "check_champion": "retrain",
    "prepare_retrain": "retrain",
    "retrain_agent": "retrain",
    "retrain_frame": "retrain",
    "retrain_learning_curves": "retrain",
    "retrain_tables": "retrain",
    # breakers
    "BREAKER_NAMES": "breakers",
    "Breach": "breakers",
    "BreakerConfig": "breakers",
    "BreakerState": "breakers",
    "CircuitBreakers": "breakers",
    "check_breakers": "breakers",
    "is_resume": "breakers",
    # paper_report
    "BACKTEST_COLUMNS": "paper_report",
    "DAILY_COLUMNS": "paper_report",
    "REPORT_COLUMNS": "paper_report",
    "SUMMARY_KEYS": "paper_report",
    "paper_daily_report": "paper_report",
    "paper_report_markdown": "paper_report",
    "paper_summary": "paper_report",
    # paper
    "PaperConfig": "paper",
    "PaperError": "paper",
    "PaperRun": "paper",
    "PaperTrader": "paper",
    "PollConfig": "paper",
    "PollingFeed": "paper",
    "RegistrySource": "paper",
    "ReplayConfig": "paper",
    "StaticSource": "paper",
    "expected_backtest": "paper",
    "fetch_history": "paper",
    "live_alerts": "paper",
    "replay_bars": "paper",
    "replay_cache_key": "paper",
    "replay_feed": "paper",
    "resume_account": "paper",
    "split_history": "paper",
    # paper_store
    "AccountState": "paper_store",
    "PAPER_LEDGER_COLUMNS": "paper_store",
    "PaperConflict": "paper_store",
    "PaperStore": "paper_store",
    "PaperStoreError": "paper_store",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
