"""Paper trading: the same numbers as the backtest, exactly once across kills, circuit breakers,
model changes, polling, bad bars and the operator's commands."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from quant_arena.features import build_features
from quant_arena.ops import bundle_actions
from quant_arena.ops.breakers import CircuitBreakers
from quant_arena.ops.paper import (
    PaperConfig,
    PaperError,
    PaperTrader,
    PollingFeed,
    RegistrySource,
    StaticSource,
    expected_backtest,
    fetch_history,
    main,
    replay_feed,
    split_history,
)
from quant_arena.ops.paper_store import ACCOUNT_COLUMNS, PaperConflict, PaperStore
from quant_arena.study import series_frame
from tests._project import ROOT
from tests.market.test_exchange import FakeExchange
from tests.ops._paper_model import FEATURES, bars, bundle_dir, paper_bundle
from tests.tuning import test_postgres_workers as _pg

postgres_url = _pg.postgres_url

torch.set_num_threads(1)

HISTORY, REPLAY = 700, 120
FLOATS = list(ACCOUNT_COLUMNS)  # the simulator ledger, equity, cash, units, fills


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_models")
    return str(root), paper_bundle(str(root), 0), paper_bundle(str(root), 1)


def _trader(
    url, bundle, account="a", version="1", breakers=None, notifier=None, source=None
):
    config = PaperConfig(
        account=account,
        model="m",
        history_bars=HISTORY,  # the store is given below
        breakers=breakers
        or {
            "max_drawdown": None,
            "daily_loss": None,
            "var_95": None,
            "max_leverage": None,
        },
    )
    return PaperTrader(
        config,
        PaperStore(url),
        source or StaticSource(bundle, version),
        FEATURES,
        notifier=notifier,
    )


def _window(n_replay=REPLAY):
    return split_history(
        bars().iloc[: HISTORY + n_replay], history_bars=HISTORY, last_bars=n_replay
    )


@pytest.fixture(scope="module")
def uninterrupted(models, tmp_path_factory):
    """The reference: one process, every bar in a row (SQLite)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'paper.db'}"
    trader = _trader(url, models[1])
    hist, window = _window()
    trader.open(hist)
    run = trader.run(replay_feed(window))
    return url, trader, run, trader.store.ledger("a")


def _backtest(bundle, n_replay=REPLAY):
    frame = series_frame(build_features(bars().iloc[: HISTORY + n_replay], FEATURES))
    return bundle_actions(bundle, frame, HISTORY - 1, len(frame)).ledger


def test_the_paper_ledger_is_the_backtest_bit_for_bit(models, uninterrupted):
    _, _, run, ledger = uninterrupted
    back = _backtest(models[1])
    assert run.bars_processed == REPLAY == len(ledger) == len(back)
    assert list(ledger["timestamp"]) == list(
        pd.to_datetime(back["timestamp"], utc=True)
    )
    for col in FLOATS:
        assert np.array_equal(ledger[col].to_numpy(), back[col].to_numpy()), col
    assert np.array_equal(
        ledger["liquidated"].to_numpy(), back["liquidated"].to_numpy()
    )
    assert (
        ledger["filled"] != 0
    ).sum() >= 5  # the model trades: fills, fees and slippage are compared
    assert (ledger["fee"] < 0).sum() >= 5
    assert set(ledger["model_version"]) == {"1"} and set(ledger["status"]) == {
        "trading"
    }
    # the comparison the report makes, through the trader's own expectation
    expected = expected_backtest(uninterrupted[1])
    assert np.array_equal(expected["equity"].to_numpy(), ledger["equity"].to_numpy())


def test_the_grown_simulator_input_is_the_whole_histories(models, tmp_path):
    """Each bar's row is appended to the simulator's arrays instead of rebuilding them from the
    whole table: with a missing bar (a gap), funding, a spread and mark prices, the arrays after
    the run are the whole history's, and the ledger is still the backtest's, bit for bit."""
    n = HISTORY + 40
    full = bars().iloc[:n].reset_index(drop=True)
    i = np.arange(n)
    full["funding_rate"] = np.where(i % 8 == 0, 0.0004 * np.sin(i), np.nan)
    full["spread_bps"] = 1.0 + (i % 5)
    for col in ("open", "high", "low", "close"):
        full[f"mark_{col}"] = full[col] * (1.0 + 0.0005 * np.cos(i))
    full = full.drop(index=HISTORY + 12).reset_index(
        drop=True
    )  # one bar missing: a gap
    step = full["timestamp"].diff() > pd.Timedelta(hours=1)
    full["gap_before"] = step.to_numpy()
    assert full["gap_before"].sum() == 1
    hist, window = full.iloc[:HISTORY], full.iloc[HISTORY:]
    trader = _trader(f"sqlite:///{tmp_path / 'p.db'}", models[1])
    trader.open(hist)
    trader.run(replay_feed(window))
    runner = trader._runners["1"]
    grown = trader._books["1"][1]
    whole = trader._arrays(runner, trader._feature_frame(trader.history, runner))
    assert grown["mark"] is not None and grown["funding_rate"] is not None
    assert grown["gap_before"].sum() == 1
    for key in ("open", "high", "low", "close", "volume", "features", "gap_before"):
        assert np.array_equal(grown[key], whole[key], equal_nan=True), key
    for key in ("funding_rate", "spread_bps", "timestamps"):
        assert np.array_equal(grown[key], whole[key], equal_nan=True), key
    for a, b in zip(grown["mark"], whole["mark"], strict=True):
        assert np.array_equal(a, b)
    frame = series_frame(build_features(full, FEATURES))
    back = bundle_actions(models[1], frame, HISTORY - 1, len(frame)).ledger
    ledger = trader.store.ledger("a")
    assert len(ledger) == len(window) == len(back)
    assert (ledger["funding"] != 0).sum() >= 1 or (back["funding"] == 0).all()
    for col in FLOATS:
        assert np.array_equal(ledger[col].to_numpy(), back[col].to_numpy()), col


def test_a_bar_is_recorded_once(models, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(url, models[1])
    hist, window = _window(5)
    trader.open(hist)
    rows = window.to_dict("records")
    assert trader.process(rows[0]) is not None
    assert trader.process(rows[0]) is None  # the same bar again: nothing happens
    stale = _trader(url, models[1])
    stale.open()
    trader.process(rows[1])
    with pytest.raises(PaperConflict, match="another process moved it past"):
        stale.process(
            rows[1]
        )  # a second process with the old state loses the compare-and-set
    assert list(trader.store.ledger("a")["timestamp"]) == [
        pd.Timestamp(r["timestamp"]) for r in rows[:2]
    ]


def test_a_killed_run_restarts_to_the_same_ledger(models, uninterrupted, tmp_path):
    """SIGKILL at random bars (and at random moments inside a bar), then restart: the ledger
    equals the uninterrupted run's."""
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    rng = random.Random(7)
    cmd = [
        sys.executable,
        "-m",
        "tests.ops._paper_driver",
        url,
        str(bundle_dir(models[0], 0)),
        "a",
        str(HISTORY),
        str(REPLAY),
    ]
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        target, seen, done = rng.randint(10, 45), 0, False
        for line in proc.stdout:
            if line.startswith("done"):
                done = True
                break
            seen += 1
            if seen >= target:
                time.sleep(rng.uniform(0.0, 0.01))
                proc.kill()  # SIGKILL
                kills += 1
                break
        proc.wait(timeout=120)
        proc.stdout.close()
        if done:
            break
    assert done, "the killed runs never finished the replay"
    assert kills >= 3
    ledger = PaperStore(url).ledger("a")
    reference = uninterrupted[3]
    assert len(ledger) == len(reference) == REPLAY
    for col in [*FLOATS, "target", "exposure"]:
        assert np.array_equal(
            ledger[col].to_numpy(), reference[col].to_numpy(), equal_nan=True
        ), col


def test_the_state_is_exact_on_postgresql(models, uninterrupted, postgres_url):
    n = 30
    trader = _trader(postgres_url, models[1], account="pg")
    hist, window = _window(REPLAY)
    trader.open(hist)
    trader.run(replay_feed(window.iloc[:n]))
    again = _trader(
        postgres_url, models[1], account="pg"
    )  # a restart reads the state back
    again.open()
    again.run(replay_feed(window))
    ledger = again.store.ledger("pg")
    for col in [*FLOATS, "target"]:
        assert np.array_equal(
            ledger[col].to_numpy(), uninterrupted[3][col].to_numpy(), equal_nan=True
        ), col


def test_a_bad_bar_is_refused_and_nothing_is_recorded(models, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(url, models[1])
    hist, window = _window(3)
    trader.open(hist)
    bad = dict(window.iloc[0])
    bad["high"] = bad["low"] - 1.0
    with pytest.raises(
        PaperError, match=r"bar 20\d\d-.* is not a valid candle .*nothing was recorded"
    ):
        trader.process(bad)
    other = dict(window.iloc[0], symbol="ETH/USD")
    with pytest.raises(
        PaperError, match="trades symbol='BTC/USD'; got a bar with symbol='ETH/USD'"
    ):
        trader.process(other)
    assert trader.store.ledger("a").empty
    assert trader.store.state("a").last_ts == pd.Timestamp(hist["timestamp"].iloc[-1])
    assert (
        trader.process(dict(window.iloc[0])) is not None
    )  # the good bar still goes through


class _Recorder:
    def __init__(self):
        self.events = []

    def send(self, event):
        self.events.append(event)
        return {"recorder": True}


def test_a_breach_flattens_halts_alerts_and_only_a_command_resumes(
    models, uninterrupted, tmp_path
):
    reference = uninterrupted[3]
    peak = np.maximum.accumulate(
        np.concatenate(([1.0], reference["equity"].to_numpy()))
    )[1:]
    dd = (peak - reference["equity"].to_numpy()) / peak
    limit = float(np.quantile(dd[dd > 0], 0.5))  # a limit the reference run crosses
    first = int(np.argmax(dd > limit))
    url = f"sqlite:///{tmp_path / 'p.db'}"
    notes = _Recorder()
    trader = _trader(url, models[1], breakers={"max_drawdown": limit}, notifier=notes)
    hist, window = _window()
    trader.open(hist)
    trader.run(replay_feed(window.iloc[: first + 6]))
    led = trader.store.ledger("a")
    # identical to the reference up to the breach bar
    assert np.array_equal(
        led["equity"].to_numpy()[: first + 1],
        reference["equity"].to_numpy()[: first + 1],
    )
    assert led["event"].iloc[first] == "breach:max_drawdown"
    assert led["status"].iloc[first] == "halted" and led["target"].iloc[first] == 0.0
    assert led["units"].iloc[first + 1] == 0.0  # flat from the next open
    assert (led["units"].iloc[first + 1 :] == 0.0).all() and led["target"].iloc[
        first + 1 :
    ].isna().all()
    assert [e.kind for e in notes.events] == [
        "breach"
    ] and "max_drawdown" in notes.events[0].title
    assert trader.alerts[0]["kind"] == "breach"
    state = trader.store.state("a")
    assert state.halted and "exceeds the limit max_drawdown" in state.halt_reason
    # a restart keeps the halt and rebuilds the breakers' state from the ledger
    again = _trader(url, models[1], breakers={"max_drawdown": limit})
    again.open()
    assert again.state.halted
    assert again.breakers.state() == trader.breakers.state()
    again.run(replay_feed(window.iloc[: first + 8]))
    assert (again.store.ledger("a")["units"].iloc[first + 1 :] == 0.0).all()
    # resume: an explicit command, applied at the next bar
    assert main(["--store", url, "resume", "--account", "a"]) == 0
    assert (
        main(["--store", url, "resume", "--account", "a"]) == 2
    )  # not halted any more
    resumed = _trader(url, models[1], breakers={"max_drawdown": limit})
    resumed.open()
    row = resumed.process(dict(window.iloc[first + 8]))
    assert (
        row["event"] == "resume"
        and row["status"] == "trading"
        and np.isfinite(row["target"])
    )
    assert resumed.breakers.peak == row["equity"]
    kinds = list(resumed.store.events_frame("a")["kind"])
    assert kinds == ["create", "breach", "resume"]


def test_the_alert_hook_sends_a_breach_at_its_bar_and_once(
    models, uninterrupted, tmp_path, server
):
    """A polling run may never end: around the paper node, AlertHooks hands the trader its
    notifier, so a breach reaches the webhook at the breach's bar; the node's saved
    ``paper_alerts`` are then not sent a second time."""
    from types import SimpleNamespace

    from quant_arena.hooks import AlertHooks

    equity = uninterrupted[3]["equity"].to_numpy()
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    dd = (peak - equity) / peak
    limit = float(np.quantile(dd[dd > 0], 0.5))
    first = int(np.argmax(dd > limit))
    hooks = AlertHooks()
    hooks.after_context_created(
        SimpleNamespace(
            params={"paper": {"notify": {"webhook": {"enabled": True}}}},
            config_loader={"credentials": {"webhook": {"url": server.url + "/hook"}}},
        )
    )
    node = SimpleNamespace(name="paper_trade")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    hooks.before_node_run(node)
    trader = _trader(url, models[1], breakers={"max_drawdown": limit})
    hist, window = _window()
    trader.open(hist)
    trader.run(replay_feed(window.iloc[:first]))
    assert server.requests == []  # no breach yet
    trader.process(dict(window.iloc[first]))
    assert len(server.requests) == 1  # at the breach's bar, not at the node's end
    body = server.requests[0].json()
    assert "breach" in json.dumps(body) and "max_drawdown" in json.dumps(body)
    trader.run(replay_feed(window.iloc[first + 1 : first + 4]))
    hooks.after_node_run(node)
    assert trader.alerts[0]["sent"] is True
    hooks.after_dataset_saved("paper_alerts", trader.alerts, node)
    assert len(server.requests) == 1  # not sent twice
    # outside the node, a trader has no notifier of its own
    assert _trader(url, models[1]).notifier is None
    # an alert a trader could not send (no notifier) is sent by the hook at the node's end
    unsent = dict(trader.alerts[0])
    unsent.pop("sent")
    hooks.after_dataset_saved("paper_alerts", [unsent], node)
    assert len(server.requests) == 2


def test_a_liquidation_halts_the_account(models, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(url, models[1])
    hist, window = _window(40)
    trader.open(hist)
    trader.state.pending_target = (
        1.0  # long, then a crash through the liquidation price
    )
    rows = window.to_dict("records")
    trader.process(rows[0])
    crash = dict(rows[1])
    crash.update(
        open=crash["open"] * 0.01,
        low=crash["open"] * 0.005,
        close=crash["open"] * 0.01,
        high=crash["open"] * 0.011,
    )
    trader.state.pending_target = 8.0
    trader.process(crash)
    state = trader.store.state("a")
    assert state.halted and (
        "liquidation" in state.halt_reason or "bankruptcy" in state.halt_reason
    )


def test_a_promotion_is_picked_up_at_the_next_bar(models, uninterrupted, tmp_path):
    class Registry:
        name = "m"

        def __init__(self):
            self.champion = "1"
            self.loads = []

        def resolve(self, alias):
            assert alias == "champion"
            return self.champion

        def load(self, version, dst=None):
            self.loads.append(version)
            return models[1] if version == "1" else models[2]

    registry = Registry()
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(
        url, None, source=RegistrySource(registry, "champion", check_seconds=0.0)
    )
    hist, window = _window()
    trader.open(hist)
    k = 40
    trader.run(replay_feed(window.iloc[:k]))
    registry.champion = "2"  # promoted between two bars
    trader.run(replay_feed(window.iloc[k:]))
    led = trader.store.ledger("a")
    assert list(led["model_version"]) == ["1"] * k + ["2"] * (REPLAY - k)
    assert (
        led["event"].iloc[k] == "model:2" and (led["event"].iloc[k + 1 :] == "").all()
    )
    assert registry.loads == ["1", "2"]
    # the state carried over: the step into the switch bar is the one model 1 ordered
    assert np.array_equal(
        led["equity"].to_numpy()[: k + 1],
        uninterrupted[3]["equity"].to_numpy()[: k + 1],
    )
    assert not np.array_equal(
        led["target"].to_numpy()[k:], uninterrupted[3]["target"].to_numpy()[k:]
    )
    change = led.iloc[k]
    assert change["equity"] - led["equity"].iloc[k - 1] == pytest.approx(
        sum(change[c] for c in FLOATS[:7]), abs=1e-12
    )
    assert list(trader.store.events_frame("a")["kind"]) == ["create", "model"]


class _Registry:
    """A registry stand-in: the champion's number, and a download (a file in ``dst``) per load."""

    name = "m"

    def __init__(self, bundles):
        self.bundles = bundles
        self.champion = "1"
        self.loads = []

    def resolve(self, alias):
        return self.champion

    def load(self, version, dst=None):
        self.loads.append(version)
        if dst is not None:
            dst.mkdir(parents=True, exist_ok=True)
            (dst / "model_bundle.txt").write_text(version)
        return self.bundles[version]


def _with_execution(bundle, **execution):
    env = dict(bundle.env_config)
    env["execution"] = {**env["execution"], **execution}
    return dataclasses.replace(bundle, env_config=env)


def test_the_model_cache_keeps_the_traded_and_the_previous_version(
    models, tmp_path, caplog
):
    with pytest.raises(ValueError, match="paper.model_cache_keep=0"):
        PaperConfig(model="m", model_cache_keep=0)
    cache = tmp_path / "cache"
    (cache / "m" / "v7").mkdir(parents=True)  # a leftover of an earlier run
    (cache / "m" / "notes").mkdir()  # not a version: left alone
    registry = _Registry({v: models[1] for v in "123456"})
    source = RegistrySource(registry, cache=cache, keep=2)

    def cached():
        return sorted(p.name for p in (cache / "m").iterdir())

    for v in "12":
        registry.champion = v
        source.current()
        source.hold(v)  # what the trader does once it trades it
    assert cached() == ["notes", "v1", "v2"]  # v7 was the least recently used
    registry.champion = "3"
    with caplog.at_level(logging.INFO, logger="quant_arena.ops.paper"):
        source.current()
    assert cached() == ["notes", "v2", "v3"]
    assert "removed v1 (keeping 2: v2, v3)" in caplog.text
    # a rollback to v2, then a promotion of v4: v2 was used last, so v3 goes
    source.hold("2")
    registry.champion = "4"
    source.current()
    assert cached() == ["notes", "v2", "v4"]
    # keep=1 still never removes the version the account trades
    one = RegistrySource(registry, cache=cache, keep=1)
    one.hold("2")
    registry.champion = "5"
    one.current()
    assert cached() == ["notes", "v2", "v5"]
    one.hold("5")
    registry.champion = "6"
    one.current()
    assert cached() == ["notes", "v5", "v6"]
    assert registry.loads == list("123456")


def test_a_model_with_another_fill_delay_is_refused_and_alerted_once(
    models, uninterrupted, tmp_path
):
    registry = _Registry(
        {
            "1": models[1],
            "2": _with_execution(models[2], fill_delay=2),
            "3": _with_execution(models[2], taker_fee=0.0005),
        }
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    cache = tmp_path / "cache"
    notifier = _Recorder()

    def trader():
        config = PaperConfig(
            account="a",
            model="m",
            history_bars=HISTORY,
            breakers={
                "max_drawdown": None,
                "daily_loss": None,
                "var_95": None,
                "max_leverage": None,
            },
        )
        source = RegistrySource(registry, "champion", cache=cache, keep=1)
        return PaperTrader(config, PaperStore(url), source, FEATURES, notifier=notifier)

    hist, window = _window()
    first = trader()
    first.open(hist)
    k, m, n = 30, 60, 90
    first.run(replay_feed(window.iloc[:k]))
    registry.champion = "2"  # its orders would fill 2 bars after the decision
    run = first.run(replay_feed(window.iloc[k:m]))
    assert run.model_changes == [] and first.state.model_version == "1"
    assert run.refused == [f"{window['timestamp'].iloc[k].isoformat()} v2"]
    assert [e["kind"] for e in first.alerts] == ["rejection"]
    assert (
        "fill_delay=2 differs from the account's fill_delay=1"
        in first.alerts[0]["text"]
    )
    # the cache keeps version 1 (traded) beside the refused 2, although keep=1
    assert sorted(p.name for p in (cache / "m").iterdir()) == ["v1", "v2"]
    assert list(expected_backtest(first)["model_version"].unique()) == ["1"]
    # a restart: version 1 trades on, the refusal is not recorded or alerted again
    again = trader()
    again.open()
    assert again.run(replay_feed(window.iloc[m:n])).refused == []
    assert again.alerts == [] and len(notifier.events) == 1
    registry.champion = "3"  # same fill_delay, other fee: taken at the next bar
    again.run(replay_feed(window.iloc[n:]))
    led = again.store.ledger("a")
    assert list(led["model_version"]) == ["1"] * n + ["3"] * (REPLAY - n)
    assert list(led["event"].iloc[[k, n]]) == ["refused:2", "model:3"]
    assert (led["event"].drop(index=[k, n]) == "").all()
    # until the change to 3 (whose fee applies from its first bar), the record is version 1's
    for col in FLOATS:
        assert np.array_equal(
            led[col].to_numpy()[:n], uninterrupted[3][col].to_numpy()[:n]
        )
    assert led["fee"].iloc[n] == pytest.approx(uninterrupted[3]["fee"].iloc[n] / 2)
    events = again.store.events_frame("a")
    assert list(events["kind"]) == ["create", "refused", "model"]
    assert (
        events["detail"].iloc[2]
        == "model version 1 -> 3; execution: taker_fee 0.001 -> 0.0005"
    )
    assert sorted(p.name for p in (cache / "m").iterdir()) == ["v1", "v3"]


def test_polling_takes_closed_bars_and_equals_the_replay(
    models, uninterrupted, tmp_path
):
    raw = bars()
    hour = 3_600_000
    candles = [
        [int(pd.Timestamp(t).value // 1_000_000), o, h, lo, c, v]
        for t, o, h, lo, c, v in raw[
            ["timestamp", "open", "high", "low", "close", "volume"]
        ].itertuples(index=False)
    ]
    t_last = candles[HISTORY - 1][0]
    exchange = FakeExchange(
        candles, t_last + hour + 30 * 60_000, page_cap=500
    )  # bar HISTORY is forming
    exchange.load_markets = lambda: {"BTC/USD": {"symbol": "BTC/USD"}}
    history = fetch_history(exchange, "BTC/USD", "1h", HISTORY, sleep=lambda s: None)
    assert (
        pd.Timestamp(history["timestamp"].iloc[-1]).value // 1_000_000 == t_last
        and len(history) == HISTORY
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(url, models[1])
    trader.open(history)
    exchange.now += 25 * hour  # 25 more bars closed, the 26th forming
    feed = PollingFeed(
        exchange,
        "BTC/USD",
        "1h",
        trader.state.last_ts,
        max_polls=2,
        interval=60,
        sleep=lambda s: None,
    )
    run = trader.run(feed)
    assert run.bars_processed == 25 and feed.polls == 2
    led = trader.store.ledger("a")
    for col in [*FLOATS, "target"]:
        assert np.array_equal(
            led[col].to_numpy(), uninterrupted[3][col].to_numpy()[:25], equal_nan=True
        ), col


def test_the_operator_commands(models, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["--store", url, "status"]) == 0
    assert "no paper accounts" in capsys.readouterr().out
    trader = _trader(url, models[1])
    hist, window = _window(3)
    trader.open(hist)
    trader.run(replay_feed(window.iloc[:2]))
    assert main(["--store", url, "status", "--account", "a"]) == 0
    out = capsys.readouterr().out
    assert "trading" in out and "BTC/USD" in out
    assert main(["--store", url, "ledger", "--account", "nope"]) == 2
    assert (
        main(["--store", url, "halt", "--account", "a", "--reason", "maintenance"]) == 0
    )
    assert "ordered flat at the next bar" in capsys.readouterr().out
    state = trader.store.state("a")
    assert (
        state.halted
        and state.pending_target == 0.0
        and state.halt_reason == "halted by hand: maintenance"
    )
    again = _trader(url, models[1])
    again.open()
    row = again.process(dict(window.iloc[2]))
    assert row["units"] == 0.0 and np.isnan(row["target"]) and row["status"] == "halted"
    assert main(["--store", url, "ledger", "--account", "a", "--tail", "1"]) == 0
    assert "halted" in capsys.readouterr().out


def test_settings_are_checked(models, tmp_path):
    with pytest.raises(ValueError, match="give a SQLAlchemy URL"):
        PaperConfig(model="m", store="paper.db")
    with pytest.raises(ValueError, match="history_bars"):
        PaperConfig(model="m", history_bars=1)
    with pytest.raises(PaperError, match="history_bars=5000 needed"):
        split_history(bars(), history_bars=5000, last_bars=10)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    trader = _trader(url, models[1])
    with pytest.raises(PaperError, match="does not exist yet"):
        trader.open()
    hist, _ = _window(3)
    trader.open(hist)
    other = PaperTrader(
        PaperConfig(account="a", model="other", store=url),
        PaperStore(url),
        StaticSource(models[1]),
        FEATURES,
    )
    with pytest.raises(
        PaperError, match="trades model='m', the parameters say 'other'"
    ):
        other.open()


def test_breakers_rebuilt_from_a_ledger_equal_the_running_ones(uninterrupted):
    led = uninterrupted[3]
    running = uninterrupted[1].breakers
    assert (
        CircuitBreakers.from_ledger(led, running.config, 1.0).state() == running.state()
    )


def test_a_store_password_stays_out_of_the_parameters(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="holds a password") as err:
        PaperConfig(store="postgresql://paper:s3cr3t-pw@db.example/paper")
    assert "s3cr3t-pw" not in str(err.value) and "QUANT_ARENA_PAPER_STORE" in str(
        err.value
    )
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("QUANT_ARENA_PAPER_STORE", url)
    assert PaperConfig().store_url() == url
    with pytest.raises(
        Exception
    ) as down:  # nothing listens there: the error must not show the password
        PaperStore("postgresql://paper:s3cr3t-pw@127.0.0.1:1/paper")
    assert "127.0.0.1" in str(down.value) and "s3cr3t-pw" not in str(down.value)


def test_a_store_repr_masks_its_password(postgres_url):
    secret = postgres_url.split("postgres:", 2)[-1].split("@")[0]
    store = PaperStore(
        postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    )  # the driver is added
    assert (
        secret and secret not in repr(store) and "postgres:***@127.0.0.1" in repr(store)
    )


def test_replay_speed_and_poll_interval_wait_between_bars():
    waits = []
    rows = list(replay_feed(bars().iloc[:4], speed=3600.0, sleep=waits.append))
    assert len(rows) == 4 and waits == [
        1.0,
        1.0,
        1.0,
    ]  # 1h bars at 3600x: one second apart, none before the first
    assert (
        list(replay_feed(bars().iloc[:3], speed=0.0, sleep=waits.append))
        and len(waits) == 3
    )  # as fast as possible
    exchange = FakeExchange([], 0)
    exchange.load_markets = lambda: {"BTC/USD": {"symbol": "BTC/USD"}}
    naps = []
    feed = PollingFeed(
        exchange,
        "BTC/USD",
        "1h",
        pd.Timestamp("2024-01-01", tz="UTC"),
        interval=30,
        max_polls=3,
        sleep=naps.append,
    )
    assert (
        list(feed) == [] and feed.polls == 3 and naps.count(30) == 2
    )  # nothing new; a pause between polls
