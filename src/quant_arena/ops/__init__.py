"""After the study: scheduled retraining's building blocks (library code: no Kedro).

- :mod:`quant_arena.ops.notify`: alerts (Telegram Bot API, generic JSON webhook);
  :func:`make_notifier` builds a :class:`Notifier` whose ``send`` never raises and never shows
  a secret.
- :mod:`quant_arena.ops.drift`: per-feature PSI and KS, return/volatility regime and the
  champion's decay (rolling Sharpe), gathered by :func:`drift_report`.

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`): sending a failure
alert does not import scipy or MLflow. Add a name here as ``"Name": "module"``.
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
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
