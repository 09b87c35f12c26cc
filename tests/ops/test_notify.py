"""The notifier against a real HTTP server on 127.0.0.1 standing in for Telegram and a webhook.

The secrets test (the token found nowhere) is in tests/test_secrets.py with the other secrets.
"""

from __future__ import annotations

import json
import logging
import math
import time

import numpy as np
import pytest

from quant_arena.ops import EVENT_KINDS, Event, NotifyConfig, make_notifier
from tests.ops._http import refused_url

TOKEN = "123456:test-token-ABC"
CHAT = "-100200300"
CREDS = {"telegram": {"bot_token": TOKEN, "chat_id": CHAT}}
PROMOTION = Event(
    "promotion",
    "ppo_mlp v3 is champion",
    "beat v2 on the latest window",
    {"version": 3, "sharpe": 1.25},
)


def _telegram(server, **extra) -> dict:
    return {"telegram": {"base_url": server.url, **extra}}


def test_telegram_posts_send_message_to_the_bot_path(server) -> None:
    notifier = make_notifier(_telegram(server), credentials=CREDS, environ={})
    assert notifier.send(PROMOTION) == {"telegram": True}
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == f"/bot{TOKEN}/sendMessage"
    assert req.headers["Content-Type"] == "application/json"
    body = req.json()
    assert set(body) == {"chat_id", "text", "disable_web_page_preview"}
    assert body["chat_id"] == CHAT
    assert body["text"] == (
        "[quant_arena] PROMOTION: ppo_mlp v3 is champion\n"
        "beat v2 on the latest window\nversion: 3\nsharpe: 1.25"
    )


def test_webhook_posts_the_event_as_json(server) -> None:
    config = {"webhook": {"url": f"{server.url}/hooks/retrain?k=1"}}
    notifier = make_notifier(config, environ={})
    event = Event(
        "drift", "drift on f_rsi", fields={"psi": np.float64(0.4), "nan": math.nan}
    )
    assert notifier.send(event) == {"webhook": True}
    [req] = server.requests
    assert (req.method, req.path) == ("POST", "/hooks/retrain?k=1")
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "source": "quant_arena",
        "kind": "drift",
        "title": "drift on f_rsi",
        "text": "",
        "fields": {"psi": 0.4, "nan": "nan"},  # strict JSON: NaN travels as a string
    }


def test_both_channels_and_the_events_filter(server) -> None:
    config = {
        "telegram": {"base_url": server.url, "events": ["failure"]},
        "webhook": {"url": f"{server.url}/hook"},
    }
    notifier = make_notifier(config, credentials=CREDS, environ={})
    assert notifier.channels == ("telegram", "webhook")
    assert notifier.send(PROMOTION) == {"webhook": True}  # telegram wants failures only
    assert [r.path for r in server.requests] == ["/hook"]
    assert notifier.send(Event("failure", "retrain failed")) == {
        "telegram": True,
        "webhook": True,
    }
    assert [r.path for r in server.requests][1:] == [
        f"/bot{TOKEN}/sendMessage",
        "/hook",
    ]


def test_secrets_from_the_environment_and_credentials_first(server) -> None:
    env = {
        "QUANT_ARENA_TELEGRAM_BOT_TOKEN": "999:env-token",
        "QUANT_ARENA_TELEGRAM_CHAT_ID": "77",
        "QUANT_ARENA_WEBHOOK_URL": f"{server.url}/from-env",
    }
    config = {"telegram": {"base_url": server.url}, "webhook": {}}
    assert make_notifier(config, environ=env).send(PROMOTION) == {
        "telegram": True,
        "webhook": True,
    }
    assert [r.path for r in server.requests] == [
        "/bot999:env-token/sendMessage",
        "/from-env",
    ]
    assert server.requests[0].json()["chat_id"] == "77"
    creds = {**CREDS, "webhook": {"url": f"{server.url}/from-creds"}}
    make_notifier(config, credentials=creds, environ=env).send(PROMOTION)
    assert [r.path for r in server.requests][2:] == [
        f"/bot{TOKEN}/sendMessage",
        "/from-creds",
    ]


def test_an_http_500_is_logged_and_does_not_raise(server, caplog) -> None:
    server.status, server.answer = 500, b'{"error": "boom"}'
    config = {**_telegram(server), "webhook": {"url": f"{server.url}/hook"}}
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        result = make_notifier(config, credentials=CREDS, environ={}).send(PROMOTION)
    assert result == {"telegram": False, "webhook": False}
    assert len(server.requests) == 2  # both tried
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("HTTP 500" in w and "boom" in w for w in warnings)
    assert warnings[0].startswith(
        "notify: telegram did not deliver the promotion event"
    )


def test_a_refused_connection_is_logged_and_does_not_raise(caplog) -> None:
    url = refused_url()
    config = {"telegram": {"base_url": url}, "webhook": {"url": f"{url}/hook"}}
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        result = make_notifier(config, credentials=CREDS, environ={}).send(PROMOTION)
    assert result == {"telegram": False, "webhook": False}
    assert caplog.text.count("no answer") == 2
    assert "refused" in caplog.text.lower()


def test_a_timeout_is_logged_and_does_not_raise(server, caplog) -> None:
    server.delay = 2.0
    notifier = make_notifier(
        _telegram(server, timeout=0.2), credentials=CREDS, environ={}
    )
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        result = notifier.send(PROMOTION)
    assert result == {"telegram": False}
    assert time.perf_counter() - start < 1.5
    # a read timeout or a connect timeout (urllib wraps the latter in URLError)
    assert (
        "no answer within 0.2 s" in caplog.text or "no answer: timed out" in caplog.text
    )


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"<html>gateway</html>", "not JSON"),
        (
            b'{"ok": false, "description": "Bad Request: chat not found"}',
            "chat not found",
        ),
        (b"[1, 2]", "did not accept"),
    ],
)
def test_a_bad_telegram_answer_is_a_failure(server, caplog, answer, says) -> None:
    server.answer = answer
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        result = make_notifier(_telegram(server), credentials=CREDS, environ={}).send(
            PROMOTION
        )
    assert result == {"telegram": False}
    assert says in caplog.text


def test_a_channel_without_its_secrets_warns_and_reports_false(server, caplog) -> None:
    config = {**_telegram(server), "webhook": {}}
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        notifier = make_notifier(
            config, credentials={"telegram": {"chat_id": CHAT}}, environ={}
        )
        assert "cannot send: no bot token" in caplog.text
        assert "webhook is configured but cannot send: no URL" in caplog.text
        assert notifier.send(PROMOTION) == {"telegram": False, "webhook": False}
    assert server.requests == []


def test_disabled_or_absent_channels_send_nothing(server) -> None:
    assert make_notifier(None, credentials=CREDS).send(PROMOTION) == {}
    off = make_notifier(_telegram(server, enabled=False), credentials=CREDS, environ={})
    assert off.channels == () and off.send(PROMOTION) == {}
    assert server.requests == []


def test_send_never_raises_even_on_a_broken_event(server, caplog) -> None:
    class Weird(Event):
        def message(self) -> str:
            raise RuntimeError("cannot format")

    notifier = make_notifier(_telegram(server), credentials=CREDS, environ={})
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.notify"):
        assert notifier.send(Weird("info", "x")) == {"telegram": False}
    assert "RuntimeError: cannot format" in caplog.text


def test_config_is_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        NotifyConfig.model_validate({"telegram": {"bot_tokn": "x"}})
    with pytest.raises(ValueError, match="telegram.base_url must be an http"):
        NotifyConfig.model_validate({"telegram": {"base_url": "api.telegram.org"}})
    with pytest.raises(ValueError, match="webhook.url must be an http"):
        NotifyConfig.model_validate({"webhook": {"url": "ftp://host/x"}})
    with pytest.raises(ValueError, match="events"):
        NotifyConfig.model_validate({"webhook": {"events": ["promotoin"]}})
    with pytest.raises(ValueError, match="credentials 'telegram' must be a mapping"):
        make_notifier({"telegram": {}}, credentials={"telegram": "x"}, environ={})


def test_event_kind_is_checked_and_payload_is_strict_json() -> None:
    with pytest.raises(ValueError, match="Event.kind: 'promoted'"):
        Event("promoted", "x")
    event = Event(
        "failure", "t", fields={"a": np.int64(2), "b": [math.inf], "c": object}
    )
    data = json.loads(json.dumps(event.payload(), allow_nan=False))
    assert data["fields"] == {"a": 2, "b": ["inf"], "c": "<class 'object'>"}
    long = Event("info", "x" * 5000).message()
    assert len(long) == 4096 and long.endswith("...")


def test_reprs_show_no_secret() -> None:
    config = {"telegram": {}, "webhook": {}}
    creds = {
        **CREDS,
        "webhook": {"url": "https://user:pw-secret@hooks.example/T0/B1?k=s3"},
    }
    shown = repr(make_notifier(config, credentials=creds, environ={}))
    assert shown == (
        "Notifier(channels=[TelegramChannel(url='https://api.telegram.org/bot***/sendMessage', "
        f"chat_id='***', events={list(EVENT_KINDS)}), "
        f"WebhookChannel(url='https://hooks.example/***', events={list(EVENT_KINDS)})])"
    )
