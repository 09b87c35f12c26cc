"""Alerts for scheduled retraining: Telegram (Bot API over HTTPS) and a generic JSON webhook.

An :class:`Event` (``promotion``, ``rejection``, ``drift``, ``failure``, ``breach`` (a paper account's circuit breaker) or ``info``) goes to every
configured channel whose ``events`` list holds its kind:

- **Telegram**: ``POST {base_url}/bot<token>/sendMessage`` with the JSON body
  ``{"chat_id", "text", "disable_web_page_preview": true}``; delivered when Telegram answers
  ``{"ok": true, ...}``. ``base_url`` is a parameter (default ``https://api.telegram.org``) so
  tests point it at a local server.
- **Webhook**: ``POST <url>`` with the JSON body :meth:`Event.payload`; delivered on any 2xx.

Secrets. The bot token and chat id come from the credentials mapping (Kedro's
``conf/local/credentials.yml``: ``telegram: {bot_token, chat_id}``) or, when it lacks them, from
``QUANT_ARENA_TELEGRAM_BOT_TOKEN`` / ``QUANT_ARENA_TELEGRAM_CHAT_ID``. The webhook URL (which
often embeds a secret, e.g. Slack's) comes from the config's ``url``, credentials
``webhook: {url}`` or ``QUANT_ARENA_WEBHOOK_URL``; prefer the last two, since parameters are
logged to MLflow. Neither the token, the chat id (unless shorter than 5 characters) nor the
webhook URL beyond its host ever appear in a log line, an error message, a repr or a returned
value: every text a channel produces goes through its mask, then is cut to 300 characters (the
Telegram URL is shown as ``.../bot***/sendMessage``, the webhook as ``https://host/***``), and
the config models hide input values in their validation errors.

Never fails the caller. :meth:`Notifier.send` catches everything a channel raises (connection
refused, timeout, HTTP error, an answer that is not the expected JSON, a channel without its
secrets), logs one masked warning per failed channel and returns ``{channel: delivered}``.
Only the standard library (``urllib``) talks HTTP.
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ENV_TELEGRAM_CHAT_ID",
    "ENV_TELEGRAM_TOKEN",
    "ENV_WEBHOOK_URL",
    "EVENT_KINDS",
    "Event",
    "NotifyConfig",
    "Notifier",
    "TelegramConfig",
    "WebhookConfig",
    "make_notifier",
]

logger = logging.getLogger(__name__)

EventKind = Literal["promotion", "rejection", "drift", "failure", "breach", "info"]
#: Every event kind, in the order a channel's default ``events`` list holds them.
EVENT_KINDS: tuple[str, ...] = ("promotion", "rejection", "drift", "failure", "breach", "info")

ENV_TELEGRAM_TOKEN = "QUANT_ARENA_TELEGRAM_BOT_TOKEN"
ENV_TELEGRAM_CHAT_ID = "QUANT_ARENA_TELEGRAM_CHAT_ID"
ENV_WEBHOOK_URL = "QUANT_ARENA_WEBHOOK_URL"

MASK = "***"
#: Telegram rejects messages longer than this (characters); longer texts are cut.
TELEGRAM_MAX_CHARS = 4096
_REASON_CHARS = (
    300  # a warning quotes this much of a failure's reason, cut AFTER masking
)
_MIN_MASKED_CHAT = (
    5  # chat ids shorter than this are not masked in texts (they are not secret)
)


# --------------------------------------------------------------------------- the event


def _json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: NaN/inf as strings, numpy scalars as Python, the rest str."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


@dataclass(frozen=True)
class Event:
    """One thing worth telling a human: a promotion, a rejection, drift, a failure, a circuit-breaker breach, or info."""

    kind: str
    title: str
    text: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(
                f"Event.kind: {self.kind!r} is not one of {list(EVENT_KINDS)}"
            )

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body: source, kind, title, text and the fields (JSON-safe)."""
        return {
            "source": "quant_arena",
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "fields": _json_safe(dict(self.fields)),
        }

    def message(self) -> str:
        """The Telegram text: ``[quant_arena] KIND: title``, the text, then ``key: value`` lines."""
        lines = [f"[quant_arena] {self.kind.upper()}: {self.title}"]
        if self.text:
            lines.append(self.text)
        lines += [f"{k}: {v}" for k, v in _json_safe(dict(self.fields)).items()]
        text = "\n".join(lines)
        if len(text) > TELEGRAM_MAX_CHARS:
            text = text[: TELEGRAM_MAX_CHARS - 3] + "..."
        return text


# --------------------------------------------------------------------------- configuration


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = Field(True, description="send on this channel at all")
    timeout: float = Field(
        5.0, gt=0.0, description="seconds to wait for the server's answer"
    )
    events: list[EventKind] = Field(
        default_factory=lambda: list(EVENT_KINDS),
        description="the event kinds this channel receives (default: all)",
    )


def _check_http_url(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme not in ("http", "https") or not urllib.parse.urlsplit(value).netloc:
        raise ValueError(f"{what} must be an http(s) URL with a host")
    return value.rstrip("/")


class TelegramConfig(_Channel):
    """Telegram Bot API channel. The bot token and chat id are secrets: credentials or env."""

    base_url: str = Field(
        "https://api.telegram.org",
        description="the Bot API's base URL (a local server in tests)",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_http_url(value, "telegram.base_url")


class WebhookConfig(_Channel):
    """Generic JSON webhook channel (POST of :meth:`Event.payload`)."""

    url: str | None = Field(
        None,
        description="the webhook URL; None = credentials webhook.url or QUANT_ARENA_WEBHOOK_URL",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value, "webhook.url")


class NotifyConfig(BaseModel):
    """Which channels send alerts. A channel is active when its block is present and enabled."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    telegram: TelegramConfig | None = Field(
        None, description="Telegram channel; None = no Telegram"
    )
    webhook: WebhookConfig | None = Field(
        None, description="JSON webhook channel; None = no webhook"
    )


# --------------------------------------------------------------------------- channels


class _Undelivered(Exception):
    """A channel could not deliver; the message is already masked."""


def _post_json(url: str, body: Mapping[str, Any], timeout: float) -> bytes:
    """POST ``body`` as JSON; the answer's bytes. Failures raise :class:`_Undelivered` without the URL."""
    data = json.dumps(body, allow_nan=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "quant_arena"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read().decode("utf-8", "replace")
        finally:
            exc.close()
        # ``from None``: the HTTPError carries the URL (``exc.url``); it must not travel on
        raise _Undelivered(f"HTTP {exc.code} {exc.reason}: {detail}") from None
    except urllib.error.URLError as exc:
        raise _Undelivered(f"no answer: {exc.reason}") from None
    except TimeoutError:
        raise _Undelivered(f"no answer within {timeout} s") from None


class _Sender:
    """A channel: its name, its event filter, its secrets (masked in every text it makes)."""

    name = "channel"

    def __init__(
        self, events: Iterable[str], timeout: float, secrets: Iterable[str | None]
    ) -> None:
        self.events = tuple(events)
        self.timeout = timeout
        variants = set()
        for s in secrets:
            if s:
                variants |= {s, urllib.parse.quote(s, safe=""), urllib.parse.quote(s)}
        # longest first, so a secret containing another is masked whole
        self._secrets = sorted(variants, key=len, reverse=True)
        self.problem: str | None = None  # set when the channel lacks its secrets

    def mask(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text

    def deliver(self, event: Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _Telegram(_Sender):
    name = "telegram"

    def __init__(
        self, config: TelegramConfig, token: str | None, chat_id: str | None
    ) -> None:
        # a chat id is masked too, unless too short to be told from other numbers in a text
        shown_chat = chat_id if chat_id and len(chat_id) >= _MIN_MASKED_CHAT else None
        super().__init__(config.events, config.timeout, [token, shown_chat])
        self._base_url = config.base_url
        self._token = token
        self._chat_id = chat_id
        missing = [
            what
            for what, value in (("bot token", token), ("chat id", chat_id))
            if not value
        ]
        if missing:
            self.problem = (
                f"no {' and no '.join(missing)} (credentials telegram.bot_token / "
                f"telegram.chat_id, or {ENV_TELEGRAM_TOKEN} / {ENV_TELEGRAM_CHAT_ID})"
            )

    @property
    def url(self) -> str:
        """The sendMessage URL with the token masked (the only form that is ever shown)."""
        return f"{self._base_url}/bot{MASK}/sendMessage"

    def __repr__(self) -> str:
        return f"TelegramChannel(url={self.url!r}, chat_id={MASK!r}, events={list(self.events)})"

    def deliver(self, event: Event) -> None:
        if self.problem:
            raise _Undelivered(self.problem)
        body = {
            "chat_id": self._chat_id,
            "text": event.message(),
            "disable_web_page_preview": True,
        }
        raw = _post_json(
            f"{self._base_url}/bot{self._token}/sendMessage", body, self.timeout
        )
        try:
            answer = json.loads(raw)
        except ValueError:
            raise _Undelivered(f"the answer is not JSON: {raw!r}") from None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise _Undelivered(f"Telegram did not accept the message: {answer!r}")


class _Webhook(_Sender):
    name = "webhook"

    def __init__(self, config: WebhookConfig, url: str | None) -> None:
        parts = urllib.parse.urlsplit(url) if url else None
        secrets: list[str | None] = [url]
        if parts is not None:
            # the path and query (Slack-style secret paths) and any user:password@
            tail = parts.path + ("?" + parts.query if parts.query else "")
            secrets.append(tail if len(tail) > 1 else None)
            if "@" in parts.netloc:
                secrets += [parts.netloc.rsplit("@", 1)[0], parts.password]
        super().__init__(config.events, config.timeout, secrets)
        self._url = url
        if not url:
            self.problem = f"no URL (webhook.url in the config, credentials webhook.url or {ENV_WEBHOOK_URL})"
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem = "the URL is not an http(s) URL with a host"

    @property
    def url(self) -> str | None:
        """Scheme, host and port only: the rest may hold a secret."""
        if not self._url:
            return None
        parts = urllib.parse.urlsplit(self._url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{host}/{MASK}"

    def __repr__(self) -> str:
        return f"WebhookChannel(url={self.url!r}, events={list(self.events)})"

    def deliver(self, event: Event) -> None:
        if self.problem:
            raise _Undelivered(self.problem)
        _post_json(self._url, event.payload(), self.timeout)


class Notifier:
    """Sends an :class:`Event` to its channels. :meth:`send` never raises."""

    def __init__(self, channels: Sequence[_Sender] = ()) -> None:
        self._channels = tuple(channels)

    @property
    def channels(self) -> tuple[str, ...]:
        """The names of the active channels, in sending order."""
        return tuple(c.name for c in self._channels)

    def __repr__(self) -> str:
        return f"Notifier(channels={list(self._channels)!r})"

    def send(self, event: Event) -> dict[str, bool]:
        """``{channel: delivered}`` for each channel whose ``events`` hold ``event.kind``.

        A channel that fails (refused, timeout, HTTP error, bad answer, missing secrets) is
        logged as a masked warning and reported ``False``; nothing is raised.
        """
        results: dict[str, bool] = {}
        for channel in self._channels:
            kind = getattr(event, "kind", None)
            if kind not in channel.events:
                continue
            try:
                channel.deliver(event)
            except Exception as exc:  # noqa: BLE001 - a notifier never fails the caller
                reason = (
                    str(exc)
                    if isinstance(exc, _Undelivered)
                    else f"{type(exc).__name__}: {exc}"
                )
                # mask first, then cut: a cut could leave part of a secret unmasked
                reason = channel.mask(reason)
                if len(reason) > _REASON_CHARS:
                    reason = reason[:_REASON_CHARS] + "..."
                logger.warning(
                    "notify: %s did not deliver the %s event %r: %s",
                    channel.name,
                    kind,
                    channel.mask(str(getattr(event, "title", ""))),
                    reason,
                )
                results[channel.name] = False
            else:
                logger.info(
                    "notify: %s delivered the %s event %r",
                    channel.name,
                    kind,
                    channel.mask(event.title),
                )
                results[channel.name] = True
        return results


# --------------------------------------------------------------------------- construction


def _section(credentials: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    if not credentials or credentials.get(key) is None:
        return {}
    section = credentials[key]
    if not isinstance(section, Mapping):
        raise ValueError(
            f"credentials {key!r} must be a mapping, got {type(section).__name__}"
        )
    return section


def _first(*values: Any) -> str | None:
    for v in values:
        if v is not None and str(v).strip():
            return str(v).strip()
    return None


def make_notifier(
    config: NotifyConfig | Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Notifier:
    """The notifier for ``config`` (None = no channel), secrets from ``credentials`` then ``environ``.

    ``credentials`` is the whole credentials mapping (``{"telegram": {"bot_token", "chat_id"},
    "webhook": {"url"}}``); ``environ`` defaults to ``os.environ``. A configured channel whose
    secrets are missing stays in the notifier and reports ``False`` (with a warning naming what is
    missing, never a value) on every event it should have sent. A bad config raises ValueError.
    """
    if not isinstance(config, NotifyConfig):
        config = NotifyConfig.model_validate(dict(config or {}))
    env = os.environ if environ is None else environ
    channels: list[_Sender] = []
    if config.telegram is not None and config.telegram.enabled:
        tg = _section(credentials, "telegram")
        channels.append(
            _Telegram(
                config.telegram,
                token=_first(tg.get("bot_token"), env.get(ENV_TELEGRAM_TOKEN)),
                chat_id=_first(tg.get("chat_id"), env.get(ENV_TELEGRAM_CHAT_ID)),
            )
        )
    if config.webhook is not None and config.webhook.enabled:
        wh = _section(credentials, "webhook")
        url = _first(config.webhook.url, wh.get("url"), env.get(ENV_WEBHOOK_URL))
        channels.append(_Webhook(config.webhook, url))
    for channel in channels:
        if channel.problem:
            logger.warning(
                "notify: %s is configured but cannot send: %s",
                channel.name,
                channel.problem,
            )
    return Notifier(channels)
