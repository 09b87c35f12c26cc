"""Secrets never travel: a known secret value is run through the code and found nowhere.

The places a secret can travel in this project, one test each:

- exchange API credentials, read by ``make_exchange`` from ``<ID>_API_KEY`` / ``<ID>_SECRET`` /
  ``<ID>_PASSWORD``: the log lines of the download (ccxt's own loggers too), the errors a failed
  download raises, and the files the download writes (the bar store, the ingested table);
- a ``kedro run`` with those variables set: Kedro's logs, the MLflow run kedro-mlflow opens (its
  params, tags and the artifacts ``hooks.MlflowReportHooks`` logs, in a SQLite tracking store in a
  temporary folder) and every file written under the project copy.

- notifier tokens (``quant_arena.ops.notify``): the Telegram bot token and chat id and the
  webhook URL's secret path, through a notifier that delivers and fails (HTTP 500 and bad answers
  that echo the URL, a timeout, a refused connection) against a local HTTP server: the log lines,
  the returned values, the reprs, the config errors and the files written.

The exchange is the real ccxt class built by ``make_exchange`` with its network calls replaced by
an in-process fake (as in ``tests/market/test_exchange.py``), so the credentials are really set on
the object that fetches. (The tune storage URL is covered by the tune storage tests.)
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import ccxt
import pytest

from quant_arena.market import exchange as exchange_module
from quant_arena.market import ingest as ingest_module
from quant_arena.market.ingest import load_sources
from quant_arena.ops import Event, NotifyConfig, TelegramConfig, make_notifier
from tests._project import copy_project
from tests.ops._http import LocalServer, refused_url

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
KEY = "canary-api-key-7f3a9c"
SECRET = "canary-secret-Q2FuYXJ5U2VjcmV0"
PASSWORD = "canary-pass-b41e"
SECRETS = (KEY, SECRET, PASSWORD)


def _bars(n: int) -> list[list[float]]:
    return [
        [T0 + i * H, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0 + i]
        for i in range(n)
    ]


def _set_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_SECRET", SECRET)
    monkeypatch.setenv("BINANCE_PASSWORD", PASSWORD)


def _offline_make_exchange(fail: Exception | None = None):
    """``make_exchange`` itself (credentials from the environment), network calls faked."""
    real = exchange_module.make_exchange

    def make(exchange_id: str, **kwargs):
        ex = real(exchange_id, **kwargs)
        assert (
            ex.apiKey == KEY and ex.secret == SECRET
        )  # the credentials are really on the object
        bars = _bars(12)

        def fetch_ohlcv(symbol, timeframe="1m", since=None, limit=None):
            if fail is not None:
                raise fail
            return [list(b) for b in bars if since is None or b[0] >= since][
                : limit or 500
            ]

        ex.fetch_ohlcv = fetch_ohlcv
        ex.load_markets = lambda *a, **k: {"BTC/USDT": {"symbol": "BTC/USDT"}}
        ex.milliseconds = lambda: T0 + 11 * H + 60_000
        return ex

    return make


def _exchange_params(store: Path) -> dict:
    return {"sources": [{"name": "binance", "kind": "exchange", "exchange_id": "binance", "symbols": ["BTC/USDT"],
                         "timeframe": "1h", "since": "2024-01-01", "store_path": str(store), "max_retries": 1,
                         "backoff": 0.0}]}  # fmt: skip


def _leaked(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def _leaks_in_files(root: Path) -> dict[str, list[str]]:
    return {
        str(p.relative_to(root)): hit
        for p in root.rglob("*")
        if p.is_file() and (hit := _leaked(p.read_bytes()))
    }


def test_exchange_credentials_stay_out_of_logs_and_written_files(
    tmp_path, monkeypatch, caplog
) -> None:
    _set_credentials(monkeypatch)
    caplog.set_level(logging.DEBUG)
    store = tmp_path / "data" / "store"
    df = load_sources(
        _exchange_params(store),
        exchange_factory=_offline_make_exchange(),
        sleep=lambda s: None,
    )
    df.to_parquet(tmp_path / "data" / "raw.parquet")
    assert (
        len(df) == 11 and "credentials: yes" in caplog.text
    )  # the run happened, with credentials
    assert _leaked(caplog.text) == []
    assert _leaks_in_files(tmp_path) == {}


def test_exchange_credentials_stay_out_of_a_failed_download(
    tmp_path, monkeypatch, caplog
) -> None:
    _set_credentials(monkeypatch)
    caplog.set_level(logging.DEBUG)
    make = _offline_make_exchange(
        fail=ccxt.RequestTimeout(
            "binance GET https://api.binance.com/api/v3/klines timed out"
        )
    )
    with pytest.raises(ccxt.RequestTimeout) as err:
        load_sources(
            _exchange_params(tmp_path / "store"),
            exchange_factory=make,
            sleep=lambda s: None,
        )
    assert "retry 1/1" in caplog.text  # the retry path logged
    assert _leaked("".join(traceback.format_exception(err.value))) == []
    assert _leaked(caplog.text) == []


def test_exchange_credentials_stay_out_of_a_bad_exchange_error(monkeypatch) -> None:
    _set_credentials(monkeypatch)
    monkeypatch.setenv("NOSUCHEXCHANGE_API_KEY", KEY)
    with pytest.raises(ValueError, match="nosuchexchange") as err:
        exchange_module.make_exchange("nosuchexchange")
    assert _leaked("".join(traceback.format_exception(err.value))) == []


class _Records(logging.Handler):
    """Every log record's formatted message and exception text, at any level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info:
            self.lines.append("".join(traceback.format_exception(*record.exc_info)))


def test_a_kedro_run_with_credentials_leaks_them_nowhere(
    tmp_path, monkeypatch, caplog, capfd
) -> None:
    """Kedro logs, MLflow params / tags / artifacts and every written file, after an ingest and
    clean run that downloads with credentials set in the environment."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = copy_project(tmp_path, raw=False)
    _set_credentials(monkeypatch)
    fake = _offline_make_exchange()
    # ingest binds make_exchange at import: patch it where the run looks it up, and at its source
    monkeypatch.setattr(ingest_module, "make_exchange", fake)
    monkeypatch.setattr(exchange_module, "make_exchange", fake)
    monkeypatch.chdir(project)
    tracking = f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    caplog.set_level(logging.DEBUG)
    bootstrap_project(project)
    params = {"ingest": _exchange_params(project / "data" / "01_raw" / "store")}
    records = _Records()
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        # Kedro configured logging (conf/logging.yml): listen after that
        root = logging.getLogger()
        root.addHandler(records)
        try:
            session.run(pipeline_names=["ingest", "clean"])
        finally:
            root.removeHandler(records)

    import mlflow

    mlflow.end_run()  # if the session left it open: end it before the temporary folder goes

    client = mlflow.MlflowClient(tracking_uri=tracking)
    runs = client.search_runs(
        experiment_ids=[e.experiment_id for e in client.search_experiments()]
    )
    # kedro-mlflow logged the run's parameters, hooks.MlflowReportHooks a report
    assert len(runs) == 1 and runs[0].data.params
    reports = {a.path for a in client.list_artifacts(runs[0].info.run_id, "reports")}
    assert "reports/data_quality_report.csv" in reports
    logged = (
        repr(runs[0].data.params) + repr(runs[0].data.tags) + repr(runs[0].data.metrics)
    )
    assert _leaked(logged) == []
    out = capfd.readouterr()
    text = "\n".join(records.lines)
    # the exchange was built with the credentials, and logged that it was
    assert "credentials: yes" in text
    assert _leaked(text + caplog.text + out.out + out.err) == []
    assert list((project / "data").rglob("*.parquet"))  # the run wrote its tables
    assert (
        _leaks_in_files(project) == {}
    )  # data/, mlflow.db, the artifact store, session files


# --------------------------------------------------------------------------- notifier tokens

BOT_TOKEN = "7654321:canary-bot-token-Zx9Qw"
CHAT_ID = "-100987654321"
HOOK_SECRET = "canary-hook-path-T0k3n"
NOTIFY_SECRETS = (BOT_TOKEN, CHAT_ID, HOOK_SECRET)


def _notify_leaked(text: str | bytes) -> list[str]:
    """The secrets found in ``text``, whole or their first 12 characters."""
    data = text.encode() if isinstance(text, str) else text
    return [s for s in NOTIFY_SECRETS if s[:12].encode() in data]


def _run_notifier(server: LocalServer) -> tuple[list[dict], list[str], str]:
    """Deliveries and failures (answers echoing the URL, timeout, refused) and config errors:
    the results, the error texts, the reprs."""
    credentials = {
        "telegram": {"bot_token": BOT_TOKEN, "chat_id": CHAT_ID},
        "webhook": {"url": f"{server.url}/hooks/{HOOK_SECRET}"},
    }
    config = {
        "telegram": {"base_url": server.url, "timeout": 0.3},
        "webhook": {"timeout": 0.3},
    }
    event = Event("failure", "retrain failed", "stage: train", {"run": 7})
    notifier = make_notifier(config, credentials=credentials, environ={})
    results = [notifier.send(event)]  # delivered
    server.status, server.answer = 500, b'{"error": "failed at {path}"}'
    results.append(notifier.send(event))  # HTTP 500 echoing the URL
    server.status, server.answer = 200, b"not JSON, path {path}"
    results.append(notifier.send(event))  # telegram: bad answer echoing the URL
    server.answer = b'{"ok": false, "description": "no chat at {path}"}'
    results.append(notifier.send(event))
    # a long answer whose cut (300 characters) would fall inside the secrets: mask, then cut
    server.status, server.answer = 502, b"x" * 253 + b" {path}"
    results.append(notifier.send(event))
    server.status, server.delay = 200, 1.0
    results.append(notifier.send(event))  # timeout
    server.delay = 0.0
    refused = make_notifier(
        {"telegram": {"base_url": refused_url()}}, credentials=credentials
    )
    results.append(refused.send(event))
    errors = []
    for model, bad in (
        (NotifyConfig, {"telegram": {"bot_token": BOT_TOKEN}}),  # a token in parameters
        (NotifyConfig, {"webhook": {"url": f"ftp://host/{HOOK_SECRET}"}}),
        (TelegramConfig, {"bot_token": BOT_TOKEN}),
    ):
        with pytest.raises(ValueError) as err:
            model.model_validate(bad)
        errors.append("".join(traceback.format_exception(err.value)))
    return results, errors, repr(notifier) + repr(refused)


def test_notifier_tokens_stay_out_of_logs_errors_reprs_and_files(
    tmp_path, caplog, capfd
) -> None:
    """A notifier run through success and every failure path, then every text it left."""
    caplog.set_level(logging.DEBUG)
    records = _Records()
    to_file = logging.FileHandler(tmp_path / "notify.log")
    to_file.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(records)
    root.addHandler(to_file)
    server = LocalServer()
    try:
        results, errors, shown = _run_notifier(server)
    finally:
        server.close()
        root.removeHandler(records)
        root.removeHandler(to_file)
        to_file.close()
    # the secrets really travelled where they must: the request paths and body
    paths = [r.path for r in server.requests]
    assert f"/bot{BOT_TOKEN}/sendMessage" in paths and f"/hooks/{HOOK_SECRET}" in paths
    assert server.requests[0].json()["chat_id"] == CHAT_ID
    assert results == [
        {"telegram": True, "webhook": True},
        {"telegram": False, "webhook": False},
        {"telegram": False, "webhook": True},
        {"telegram": False, "webhook": True},
        {"telegram": False, "webhook": False},
        {"telegram": False, "webhook": False},
        {"telegram": False},
    ]
    text = "\n".join(records.lines)
    assert text.count("did not deliver") == 9  # every failure logged
    (tmp_path / "results.txt").write_text(repr(results) + shown)
    out = capfd.readouterr()
    assert _notify_leaked(text + caplog.text + out.out + out.err) == []
    assert _notify_leaked(shown + repr(results)) == []
    assert _notify_leaked("".join(errors)) == []
    assert (tmp_path / "notify.log").stat().st_size > 0
    leaks = {
        str(p.relative_to(tmp_path)): hit
        for p in tmp_path.rglob("*")
        if p.is_file() and (hit := _notify_leaked(p.read_bytes()))
    }
    assert leaks == {}
