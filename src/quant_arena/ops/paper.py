"""Paper trading: the registry's champion on bars as they close, with the backtest's own code.

One **paper account** trades one series (symbol, timeframe) with one registered model's current
``champion`` (or another alias). For every new bar, :class:`PaperTrader`:

1. appends the bar to the account's bar history (kept in the database) and rebuilds the model's
   features over that history with the study's feature builder
   (:func:`~quant_arena.features.series_feature_arrays`: the code of
   :func:`~quant_arena.features.build_features`, on arrays);
2. scales the new bar's feature row with the model's own scaler and appends it to the
   simulator's arrays of the bars before it (the features are causal, so the earlier rows are
   unchanged; the arrays equal the whole history's, bit for bit, tested), then builds the
   backtest's env on them (:func:`quant_arena.study.make_eval_env`: the same
   :class:`~quant_arena.envs.TradingEnv`, the same compiled kernel, the model's execution costs);
3. restores the simulator's state at the previous close (:meth:`TradingEnv.restore
   <quant_arena.envs.TradingEnv.restore>`) and steps it with the order pending from that close:
   the order fills at this bar's open, the account is marked at its close (fees, spread,
   slippage, impact, funding, liquidation: the kernel's rules);
4. checks the circuit breakers (:mod:`quant_arena.ops.breakers`): a breach orders the position
   flat at this close, halts the account (it stays flat, no model decisions) until an operator
   resumes it (``python -m quant_arena.ops.paper resume``), records why and sends a ``breach``
   alert through :mod:`quant_arena.ops.notify`; a liquidation or bankruptcy halts it too;
5. otherwise asks the model's **ONNX** policy (:class:`quant_arena.agents.OnnxPolicy`, with the
   observation normalisation inside the graph) for the action at this close, and turns it into
   the target exposure ordered for the next open;
6. writes the bar, its ledger row and the new state in ONE transaction
   (:class:`~quant_arena.ops.paper_store.PaperStore`): each bar is processed exactly once; a
   process killed at any point restarts from the last recorded bar and gives the same ledger.

The first decision is made when the account is created, at the close of the last history bar,
as the backtest's run starts with a decision at its start bar. Therefore the paper ledger of a
replayed window is, bit for bit, the ledger :func:`quant_arena.ops.bundle_actions` (the studies'
backtest) gives for the same model over the same bars (tested), as long as no breaker fires.

**Model changes.** Before each bar the model source is asked for the alias's version (the
registry's ``champion``): a promotion is picked up at the next bar; the account's cash,
position, pending order and episode state carry over (the new model's own features, scaler,
window and costs apply from that bar); each ledger row names the version that decided it. A
version whose ``fill_delay`` differs from the account's is refused (orders in flight cannot be
moved to another delay): the account keeps trading its version, and the refusal is recorded
(event ``refused``, ledger label ``refused:<v>``) and alerted (``rejection``) once per version.

**Feeds.** :func:`replay_feed` hands over the bars of a table one at a time (as fast as possible or
``speed`` times real time); :class:`PollingFeed` asks an exchange (ccxt, or anything with
``fetch_ohlcv`` and ``milliseconds``) for newly CLOSED bars every ``interval`` seconds
(:func:`quant_arena.market.fetch_ohlcv_incremental`).

Cost per bar: one feature build over the history's arrays, one env build, one ONNX call and one
database transaction: about 4 ms of CPU for a few thousand bars of history.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from quant_arena.market import KEY_COLUMNS, MARK_COLUMNS, OHLCV_COLUMNS
from quant_arena.ops.breakers import BreakerConfig, CircuitBreakers
from quant_arena.ops.notify import Event, NotifyConfig
from quant_arena.ops.paper_store import ACCOUNT_COLUMNS, AccountState, PaperStore

__all__ = [
    "PaperConfig",
    "PaperError",
    "PaperRun",
    "PaperTrader",
    "PollConfig",
    "PollingFeed",
    "ReplayConfig",
    "RegistrySource",
    "StaticSource",
    "expected_backtest",
    "live_alerts",
    "fetch_history",
    "replay_bars",
    "replay_cache_key",
    "replay_feed",
    "resume_account",
    "split_history",
]

logger = logging.getLogger(__name__)

NAN = math.nan
#: The environment variable that overrides ``paper.store`` (and the CLI's default ``--store``).
ENV_STORE = "QUANT_ARENA_PAPER_STORE"


class PaperError(ValueError):
    """Paper trading cannot go on: bad bar, bad settings, a model that cannot be run."""


class ReplayConfig(BaseModel):
    """Replay mode: the bars of a table (the cleaned OHLCV of the data pipeline) one at a time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start: str | None = Field(
        None,
        description="first replayed bar (ISO time, UTC); null: `last_bars` before the end",
    )
    last_bars: int | None = Field(
        2160,
        ge=1,
        description="replay the last N bars when `start` is null (2160 = 90 days of 1h bars)",
    )
    speed: float = Field(
        0.0,
        ge=0.0,
        description="0: as fast as possible; k: k times real time (1h bar every 3600/k s)",
    )
    cache: str | None = Field(
        "data/03_primary/paper_bars",
        description="folder of the cleaned bars, keyed by the ingest and clean parameters, the code "
        "version and the SHA-256 of every source file (one entry kept); null: ingest and clean every run",
    )


class PollConfig(BaseModel):
    """Polling mode: newly closed bars from an exchange through ccxt."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exchange: str = Field("binance", description="ccxt exchange id")
    sandbox: bool = False
    interval: float = Field(60.0, gt=0.0, description="seconds between polls")
    max_polls: int | None = Field(
        1,
        ge=1,
        description="polls in this run (1: catch up once and exit, for cron); null: forever",
    )
    limit: int = Field(1000, ge=1, description="bars per request")


class PaperConfig(BaseModel):
    """The ``paper`` block of the parameters (see the README's "Paper trading")."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, hide_input_in_errors=True
    )  # a URL may hold a password
    account: str = Field(
        "paper",
        min_length=1,
        description="the paper account's name (several share one database)",
    )
    model: str = Field(
        "quant_arena_ppo_mlp",
        min_length=1,
        description="registered model (retrain: <model_prefix>_<agent>)",
    )
    alias: str = Field(
        "champion",
        min_length=1,
        description="the alias (or version number) traded; re-read every bar",
    )
    symbol: str | None = None
    timeframe: str | None = None
    store: str = Field(
        "sqlite:///data/07_model_output/paper.db",
        description="SQLAlchemy URL of the state database",
    )
    mode: Literal["replay", "poll"] = "replay"
    history_bars: int = Field(
        1000,
        ge=2,
        description="bars before the first decision (feature warm-up and observation window)",
    )
    initial_equity: float | None = Field(
        None, gt=0.0, description="null: the model env's initial_equity"
    )
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    poll: PollConfig = Field(default_factory=PollConfig)
    breakers: BreakerConfig = Field(default_factory=BreakerConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    model_cache: str = Field(
        "data/06_models/paper", description="where registry versions are downloaded"
    )
    model_cache_keep: int = Field(
        2,
        description="model versions kept in model_cache (the one traded and the previous ones, most "
        "recently used first; 2: the one traded and one to roll back to); older ones are removed "
        "when a new version is downloaded",
    )
    model_check_seconds: float = Field(
        1.0,
        ge=0.0,
        description="re-read the alias at most this often (wall-clock seconds; 0: before every bar)",
    )

    @field_validator("model_cache_keep")
    @classmethod
    def _keep(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"paper.model_cache_keep={value}: keep at least 1 model version (the one traded) in paper.model_cache"
            )
        return value

    @field_validator("store")
    @classmethod
    def _url(cls, value: str) -> str:
        from quant_arena.tuning import mask_url

        if mask_url(value) != value:  # kedro-mlflow logs parameters: no password here
            raise ValueError(
                f"paper.store={mask_url(value)!r} holds a password: parameters are logged (MLflow); "
                f"give the URL in the environment variable {ENV_STORE} instead"
            )
        if "://" not in value:
            raise ValueError(
                f"paper.store={value!r}: give a SQLAlchemy URL, e.g. sqlite:///data/07_model_output/paper.db"
            )
        return value

    def store_url(self) -> str:
        """The state database: the environment variable :data:`ENV_STORE` when set (a URL with a
        password goes there), else ``store``."""
        return os.environ.get(ENV_STORE) or self.store


# --------------------------------------------------------------------------- models


@dataclass
class _Runner:
    """One model version, ready to decide: its ONNX policy and everything around it."""

    version: str
    bundle: Any
    policy: Any
    columns: list[str]
    scaler: Any
    env: Any  # TradingEnvConfig
    periods_per_year: float
    masked: bool
    features: Any  # the FeatureConfig that builds exactly the model's columns


def _runner(version: str, bundle: Any, bars: pd.DataFrame, features: Any) -> _Runner:
    from quant_arena.agents import OnnxPolicy
    from quant_arena.envs import TradingEnvConfig
    from quant_arena.features import config_for_columns
    from quant_arena.ops.bundle import _periods_per_year, _scaler_for

    path = bundle.onnx_path
    if path is None:
        raise PaperError(
            f"model version {version} ({bundle.agent or bundle.algo}) has no ONNX policy: paper trading runs the "
            "exported policy (RecurrentPPO cannot be exported as a stateless function)"
        )
    policy = OnnxPolicy(path)
    columns = list(bundle.feature_columns)
    try:
        own = config_for_columns(features, columns, bars.iloc[-min(len(bars), 300) :])
    except ValueError as exc:
        raise PaperError(
            f"model version {version} observes feature columns the features parameters do not build ({exc}): "
            "paper trading needs the features the model was trained with"
        ) from exc
    return _Runner(
        version=str(version),
        bundle=bundle,
        policy=policy,
        columns=columns,
        scaler=_scaler_for(bundle.scaler, columns),
        env=TradingEnvConfig.model_validate(bundle.env_config),
        periods_per_year=_periods_per_year(bundle, bars),
        masked=bool(getattr(policy, "masked", False)),
        features=own,
    )


_ROW_ARRAYS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "features",
    "gap_before",
    "funding_rate",
    "spread_bps",
    "timestamps",
)


def _concat_arrays(head: Mapping[str, Any], tail: Mapping[str, Any]) -> dict[str, Any]:
    """``MarketData.frame_arrays`` of two consecutive row blocks of one table, as of the whole."""
    out = dict(head)
    for key in _ROW_ARRAYS:
        if (head[key] is None) != (tail[key] is None):
            raise PaperError(
                f"paper data: column group {key!r} is in one block of bars only"
            )
        if head[key] is not None:
            out[key] = np.concatenate([head[key], tail[key]])
    if (head["mark"] is None) != (tail["mark"] is None):
        raise PaperError("paper data: mark prices are in one block of bars only")
    if head["mark"] is not None:
        out["mark"] = [
            np.concatenate(p) for p in zip(head["mark"], tail["mark"], strict=True)
        ]
    return out


class StaticSource:
    """A fixed model (a loaded :class:`~quant_arena.ops.ModelBundle`) under a version label."""

    def __init__(self, bundle: Any, version: str = "1") -> None:
        self.bundle = bundle
        self.version = str(version)

    def current(self) -> tuple[str, Any]:
        return self.version, self.bundle

    def load(self, version: str) -> Any:
        if str(version) != self.version:
            raise PaperError(
                f"this model source holds version {self.version} only, not {version}"
            )
        return self.bundle


class RegistrySource:
    """The version an alias of a registered model points to now (re-read when ``check_seconds``
    have passed since the last read; 0: at every call); versions are downloaded once into
    ``cache`` (``<cache>/<registered model>/v<version>``).

    The cache keeps ``keep`` versions: each download removes the versions least recently used
    (a version's directory is touched when it is downloaded and when the account starts trading
    it, :meth:`hold`), never the one just downloaded nor the one the account trades, and logs
    what it removed."""

    def __init__(
        self,
        registry: Any,
        alias: str = "champion",
        cache: str | Path | None = None,
        check_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 2,
    ) -> None:
        if int(keep) < 1:
            raise PaperError(
                f"RegistrySource keep={keep}: keep at least 1 model version (paper.model_cache_keep)"
            )
        self.registry = registry
        self.alias = str(alias)
        self.cache = Path(cache) if cache is not None else None
        self.check_seconds = float(check_seconds)
        self.clock = clock
        self.keep = int(keep)
        #: the version the account trades (never removed from the cache)
        self.in_use: str | None = None
        self._loaded: dict[str, Any] = {}
        self._version: str | None = None
        self._checked = -math.inf

    def _dir(self, version: str) -> Path | None:
        return (
            None
            if self.cache is None
            else self.cache / self.registry.name / f"v{version}"
        )

    def current(self) -> tuple[str, Any]:
        now = self.clock()
        if self._version is None or now - self._checked >= self.check_seconds:
            self._version = str(self.registry.resolve(self.alias))
            self._checked = now
        version = self._version
        return version, self.load(version)

    def load(self, version: str) -> Any:
        """The bundle of ``version`` (downloaded once; a download prunes the cache)."""
        version = str(version)
        if version not in self._loaded:
            dst = self._dir(version)
            self._loaded[version] = self.registry.load(version, dst=dst)
            if dst is not None:
                _touch(dst)
                self.prune(version)
        return self._loaded[version]

    def hold(self, version: str) -> None:
        """The account trades ``version`` from now on: it is never pruned and counts as the most
        recently used (the one a rollback goes back to after the next promotion)."""
        version = str(version)
        if version != self.in_use:
            self.in_use = version
            dst = self._dir(version)
            if dst is not None and dst.is_dir():
                _touch(dst)

    def prune(self, new: str | None = None) -> list[str]:
        """Remove the cached versions beyond the ``keep`` most recently used (never ``new`` nor
        :attr:`in_use`); returns the removed versions' directory names."""
        import shutil

        if self.cache is None:
            return []
        root = self.cache / self.registry.name
        if not root.is_dir():
            return []
        dirs = [
            p
            for p in root.iterdir()
            if p.is_dir() and p.name[:1] == "v" and p.name[1:].isdigit()
        ]
        protected = {f"v{v}" for v in (new, self.in_use) if v is not None}
        kept = [p for p in dirs if p.name in protected]
        rest = sorted(
            (p for p in dirs if p.name not in protected),
            key=lambda p: (p.stat().st_mtime_ns, int(p.name[1:])),
            reverse=True,
        )
        room = max(self.keep - len(kept), 0)
        removed = []
        for path in rest[room:]:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
            # a bundle loaded from there must be downloaded again if it is asked for
            self._loaded.pop(path.name[1:], None)
        if removed:
            logger.info(
                "paper model cache %s: removed %s (keeping %d: %s)",
                root,
                ", ".join(sorted(removed, key=lambda n: int(n[1:]))),
                self.keep,
                ", ".join(
                    sorted(
                        (p.name for p in kept + rest[:room]), key=lambda n: int(n[1:])
                    )
                ),
            )
        return removed


def _touch(path: Path) -> None:
    """Mark a cached version as used now (the cache's recency order)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


# --------------------------------------------------------------------------- replayed bars


def market_code_digest(root: Path | None = None) -> str:
    """SHA-256 of every ``*.py`` file under ``root`` (default: the installed ``quant_arena.market``
    package, where ingest and cleaning live), by relative path and content: it changes with any
    edit to that code, committed or not, and needs no git checkout."""
    import hashlib
    from importlib.util import find_spec

    base = Path(root) if root is not None else Path(str(find_spec("quant_arena.market").origin)).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(base.rglob("*.py")):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def replay_cache_key(
    ingest: Mapping[str, Any], clean: Mapping[str, Any]
) -> tuple[str | None, str]:
    """``(key, why)``: the cleaned bars' cache key (SHA-256 of the ``ingest`` and ``clean``
    parameters, the ingest and cleaning code (:func:`market_code_digest`: the source of
    ``quant_arena.market``, uncommitted edits included) and the content of every source file), or ``(None, why not)``
    when the bars cannot be cached: a source that is not a file (an exchange grows, the
    generator is not a file) or a file that is missing (the ingest reports it)."""
    import hashlib
    import json

    from quant_arena.market import parse_ingest_config
    from quant_arena.ops.bundle import file_sha256

    config = parse_ingest_config(dict(ingest))
    files = {}
    for src in config.sources:
        if src.kind != "file":
            return None, f"source {src.name!r} is kind: {src.kind}, not a file"
        path = Path(str(src.path))
        if not path.is_file():
            return None, f"source {src.name!r}: {path} is not a file"
        files[str(src.path)] = file_sha256(path)
    text = json.dumps(
        {
            "ingest": ingest,
            "clean": clean,
            "code": market_code_digest(),
            "files": files,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest(), ""


def replay_bars(
    ingest: Mapping[str, Any],
    clean: Mapping[str, Any],
    cache: str | Path | None,
    produce: Callable[[], tuple[pd.DataFrame, pd.DataFrame]],
) -> pd.DataFrame:
    """The cleaned bars a replay hands over: read from ``cache`` when an entry with this key
    (:func:`replay_cache_key`) is there, else ``produce()`` (ingest and clean: ``(clean,
    quarantine)``) and keep the result as the cache's only entry (written atomically), unless a
    bar was still open when it was ingested (``incomplete_bar``: the result depends on the clock)."""
    key, why = (
        (None, "paper.replay.cache is null")
        if cache is None
        else replay_cache_key(ingest, clean)
    )
    if key is not None:
        root = Path(str(cache))
        path = root / f"{key}.parquet"
        if path.is_file():
            bars = pd.read_parquet(path)
            logger.info(
                "paper replay: %d cleaned bars from the cache %s", len(bars), path
            )
            return bars
    bars, quarantine = produce()
    if key is None:
        logger.info("paper replay: bars ingested and cleaned (not cached: %s)", why)
        return bars
    if "rule" in quarantine and (quarantine["rule"] == "incomplete_bar").any():
        logger.info(
            "paper replay: bars ingested and cleaned (not cached: a bar was still open when ingested)"
        )
        return bars
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.tmp"
    bars.to_parquet(tmp)
    os.replace(tmp, path)
    stale = [p for p in root.glob("*.parquet") if p != path]
    for old in stale:
        old.unlink(missing_ok=True)
    logger.info(
        "paper replay: %d bars ingested and cleaned, cached as %s%s",
        len(bars),
        path,
        f" (removed {len(stale)} older entr{'y' if len(stale) == 1 else 'ies'})"
        if stale
        else "",
    )
    return bars


# --------------------------------------------------------------------------- feeds


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def split_history(
    bars: pd.DataFrame,
    *,
    history_bars: int,
    start: str | None = None,
    last_bars: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(history, to_replay)`` of one series: the replayed bars from ``start`` (or the last
    ``last_bars``) and the ``history_bars`` bars before them."""
    frame = bars.sort_values("timestamp", kind="stable").reset_index(drop=True)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    if start is not None:
        first = int((ts < _utc(start)).sum())
    elif last_bars is not None:
        first = max(len(frame) - int(last_bars), 0)
    else:
        raise PaperError("paper.replay: give `start` or `last_bars`")
    if first >= len(frame):
        raise PaperError(
            f"paper.replay: no bar at or after start={start!r} (the table ends at {ts.iloc[-1].isoformat()})"
        )
    if first < history_bars:
        raise PaperError(
            f"paper.replay: {first} bars before the first replayed bar {ts.iloc[first].isoformat()}, "
            f"history_bars={history_bars} needed (start later or lower paper.history_bars)"
        )
    return frame.iloc[first - history_bars : first].reset_index(drop=True), frame.iloc[
        first:
    ].reset_index(drop=True)


def replay_feed(
    bars: pd.DataFrame, speed: float = 0.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[dict[str, Any]]:
    """The rows of ``bars`` one at a time (dicts), ``speed`` times real time (0: no waiting)."""
    from quant_arena.market import timeframe_seconds

    for i, row in enumerate(bars.to_dict("records")):
        if i and speed > 0:
            sleep(timeframe_seconds(str(row["timeframe"])) / speed)
        yield row


class PollingFeed:
    """Newly closed bars of ``symbol``/``timeframe`` from ``exchange``, every ``interval`` seconds,
    after ``after`` (the last processed bar), for ``max_polls`` polls (None: forever)."""

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        timeframe: str,
        after: pd.Timestamp,
        *,
        interval: float = 60.0,
        max_polls: int | None = 1,
        limit: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.timeframe = timeframe
        self.after = _utc(after)
        self.interval = float(interval)
        self.max_polls = max_polls
        self.limit = int(limit)
        self.sleep = sleep
        self.polls = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from quant_arena.market import fetch_ohlcv_incremental, timeframe_seconds

        step_ms = timeframe_seconds(self.timeframe) * 1000
        while self.max_polls is None or self.polls < self.max_polls:
            if self.polls:
                self.sleep(self.interval)
            self.polls += 1
            since = int(self.after.value // 1_000_000) + step_ms
            new = fetch_ohlcv_incremental(
                self.exchange,
                self.symbol,
                self.timeframe,
                since_ms=since,
                limit=self.limit,
                sleep=self.sleep,
            )
            for row in new.to_dict("records"):
                if _utc(row["timestamp"]) > self.after:
                    self.after = _utc(row["timestamp"])
                    yield row


def fetch_history(
    exchange: Any,
    symbol: str,
    timeframe: str,
    history_bars: int,
    limit: int = 1000,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """The last ``history_bars`` closed bars from the exchange (to create a polling account)."""
    from quant_arena.market import fetch_ohlcv_incremental, timeframe_seconds

    step_ms = timeframe_seconds(timeframe) * 1000
    since = int(exchange.milliseconds()) - (history_bars + 2) * step_ms
    bars = fetch_ohlcv_incremental(
        exchange, symbol, timeframe, since_ms=since, limit=limit, sleep=sleep
    )
    if len(bars) < history_bars:
        raise PaperError(
            f"{symbol} {timeframe}: the exchange gave {len(bars)} closed bars, history_bars={history_bars} needed"
        )
    return bars.iloc[-history_bars:].reset_index(drop=True)


# --------------------------------------------------------------------------- live alerts

#: the notifier a :class:`PaperTrader` made without one sends its breach alerts through, at the
#: bar of the breach (:func:`live_alerts`; ``hooks.AlertHooks`` sets it around the paper node)
_LIVE_NOTIFIER: ContextVar[Any] = ContextVar("quant_arena_paper_notifier", default=None)


@contextmanager
def live_alerts(notifier: Any) -> Iterator[None]:
    """Within this block, a :class:`PaperTrader` created without a notifier sends its breach
    alerts through ``notifier`` as they happen (a polling loop that never ends must not hold
    them until it ends); each such alert is marked ``sent``."""
    token = _LIVE_NOTIFIER.set(notifier)
    try:
        yield
    finally:
        try:
            _LIVE_NOTIFIER.reset(token)
        except (
            ValueError
        ):  # left from another context (a runner's thread): just clear it
            _LIVE_NOTIFIER.set(None)


# --------------------------------------------------------------------------- the trader


@dataclass
class PaperRun:
    """What one :meth:`PaperTrader.run` did."""

    account: str
    bars_processed: int = 0
    bars_skipped: int = 0
    breaches: list[str] = field(default_factory=list)
    model_changes: list[str] = field(default_factory=list)
    #: model versions the alias pointed to but the account refused (``<bar> v<version>``)
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "bars_processed": self.bars_processed,
            "bars_skipped": self.bars_skipped,
            "breaches": list(self.breaches),
            "model_changes": list(self.model_changes),
            "refused": list(self.refused),
            "seconds": round(self.seconds, 3),
        }


def _execution_change(old: Any, new: Any) -> str:
    """``name a -> b, ...`` for the execution settings two env configs differ in ('' if none)."""
    a, b = old.execution.model_dump(), new.execution.model_dump()
    return ", ".join(f"{k} {a[k]} -> {b[k]}" for k in a if a[k] != b.get(k))


_BAR_FIELDS = ("open", "high", "low", "close")
#: the bar columns the feature builder and the simulator read (funding, spread and mark prices
#: too): the account keeps these of every bar
_BAR_COLUMNS = (
    *KEY_COLUMNS,
    *OHLCV_COLUMNS,
    "gap_before",
    "is_filled",
    "funding_rate",
    "spread_bps",
    *MARK_COLUMNS,
)


def _slim(bars: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`_BAR_COLUMNS` that ``bars`` has; the series keys as categoricals
    (a history grown one bar at a time would otherwise hold its strings in thousands of chunks)."""
    out = bars[[c for c in _BAR_COLUMNS if c in bars.columns]].copy()
    for key in ("symbol", "timeframe"):
        if key in out:
            out[key] = out[key].astype(str).astype("category")
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).dt.as_unit("ns")
    return out.reset_index(drop=True)


class PaperTrader:
    """One paper account (see the module docstring).

    Args:
        config: the ``paper`` parameters.
        store: the state database.
        source: where the model comes from (:class:`RegistrySource`, :class:`StaticSource`).
        features: the feature builder's config (:class:`quant_arena.features.FeatureConfig`), the
            one the model was trained with (the pipeline's ``features`` parameters).
        notifier: alerts (:func:`quant_arena.ops.make_notifier`); None: the one of an enclosing
            :func:`live_alerts` block, or none (the alerts are only logged and kept in ``alerts``).
    """

    def __init__(
        self,
        config: PaperConfig,
        store: PaperStore,
        source: Any,
        features: Any,
        notifier: Any = None,
    ) -> None:
        self.config = config
        self.store = store
        self.source = source
        self.features = features
        self.notifier = notifier if notifier is not None else _LIVE_NOTIFIER.get()
        self.state: AccountState | None = None
        #: the account's bars as arrays (``timestamp`` in int64 ns, UTC), grown a bar at a time;
        #: ``history`` is the table of them (built when asked for)
        self._bars: dict[str, np.ndarray] | None = None
        self._columns: list[str] = []
        self._keys: dict[str, str] = {}
        self._history: pd.DataFrame | None = None
        self._runners: dict[str, _Runner] = {}
        #: per model version, ``(n, arrays)``: the simulator's input arrays over the first ``n``
        #: history bars (the last processed bar's), grown by one row a bar
        self._books: dict[str, tuple[int, dict[str, Any]]] = {}
        #: the versions whose change was refused (their fill_delay is not the account's)
        self._refused: set[str] = set()
        self.breakers: CircuitBreakers | None = None
        #: the breach alerts of this object's bars (``{"kind", "title", "text", "fields"}``;
        #: the pipeline saves them as ``paper_alerts``, which AlertHooks sends)
        self.alerts: list[dict[str, Any]] = []

    @property
    def history(self) -> pd.DataFrame | None:
        """The account's bars, oldest first: the columns of :data:`_BAR_COLUMNS` it has."""
        if self._history is None and self._bars is not None:
            self._history = self._frame_of(self._bars)
        return self._history

    @history.setter
    def history(self, frame: pd.DataFrame | None) -> None:
        self._history = frame
        if frame is None:
            self._bars, self._columns, self._keys = None, [], {}
            return
        self._columns = list(frame.columns)
        self._keys = {
            k: str(frame[k].iloc[0]) for k in ("symbol", "timeframe") if k in frame
        }
        self._bars = {
            c: (
                frame[c].dt.as_unit("ns").astype("int64").to_numpy()
                if c == "timestamp"
                else frame[c].to_numpy()
            )
            for c in self._columns
            if c not in self._keys
        }

    def _frame_of(self, bars: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """The history table of ``bars`` (the arrays of :attr:`history`'s columns)."""
        n = len(bars["timestamp"])
        data: dict[str, Any] = {}
        for col in self._columns:
            if col == "timestamp":
                data[col] = pd.to_datetime(bars[col], unit="ns", utc=True)
            elif col in self._keys:
                data[col] = pd.Categorical.from_codes(
                    np.zeros(n, dtype=np.int8), categories=[self._keys[col]]
                )
            else:
                data[col] = bars[col]
        return pd.DataFrame(data, columns=self._columns)

    def _grown(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The history arrays with ``row`` (a conformed bar) appended."""
        assert self._bars is not None
        out = {}
        for col, arr in self._bars.items():
            value = row[col].value if col == "timestamp" else row[col]
            out[col] = np.append(arr, np.asarray([value], dtype=arr.dtype))
        return out

    # ------------------------------------------------------------------ set-up

    def _feature_frame(self, bars: pd.DataFrame, runner: _Runner) -> pd.DataFrame:
        """The model's feature columns over ``bars`` (only the families that make them)."""
        from quant_arena.features import build_features
        from quant_arena.study import series_frame

        return series_frame(build_features(bars, runner.features))

    def _runner_for(self, version: str, bundle: Any, bars: pd.DataFrame) -> _Runner:
        if version not in self._runners:
            self._runners[version] = _runner(version, bundle, bars, self.features)
        return self._runners[version]

    def _arrays(self, runner: _Runner, frame: pd.DataFrame) -> dict[str, Any]:
        """The simulator's input arrays (``MarketData.from_arrays`` arguments) of a feature
        table's rows: keys, OHLCV and the model's scaled columns, exactly as the backtest's
        ``market_data(model_input(...))`` reads them."""
        from quant_arena.sim import MarketData
        from quant_arena.study import model_input

        missing = [c for c in runner.columns if c not in frame.columns]
        if missing:
            raise PaperError(
                f"model version {runner.version} observes feature columns {missing} that the features "
                "parameters do not build: paper trading needs the features the model was trained with"
            )
        return MarketData.frame_arrays(
            model_input(frame, runner.columns, runner.scaler),
            runner.columns,
            bars_per_year=runner.periods_per_year,
        )

    def _env(self, runner: _Runner, arrays: Mapping[str, Any], start: int) -> Any:
        from quant_arena.sim import MarketData
        from quant_arena.study import make_eval_env

        return make_eval_env(MarketData.from_arrays(**arrays), runner.env, start)

    def _grown_arrays(
        self, runner: _Runner, bars: Mapping[str, np.ndarray]
    ) -> dict[str, Any]:
        """The simulator's input over the history ``bars`` (whose last bar is new).

        The features are rebuilt over the whole history (indicators with long memory need it)
        from the arrays (:func:`~quant_arena.features.series_feature_arrays`, the builder's own
        code without tables), but only the new bar's row is scaled and appended to the arrays
        of the bars before it: the features are causal (the look-ahead gate), so the earlier
        rows are unchanged, and every array is row-wise, so the result is the whole table's
        ``MarketData.frame_arrays(model_input(...))``, bit for bit (tested).
        """
        from quant_arena.features import series_feature_arrays

        n = len(bars["timestamp"])
        book = self._books.get(runner.version)
        if book is None or book[0] != n - 1:
            return self._arrays(
                runner, self._feature_frame(self._frame_of(bars), runner)
            )
        assert self.state is not None
        feats = series_feature_arrays(bars, self.state.timeframe, runner.features)
        missing = [c for c in runner.columns if c not in feats]
        if missing:
            raise PaperError(
                f"model version {runner.version} observes feature columns {missing} that the features "
                "parameters do not build: paper trading needs the features the model was trained with"
            )
        values = np.array([[feats[c][-1] for c in runner.columns]], dtype=np.float64)
        head = book[1]

        def last(col: str, dtype: Any) -> np.ndarray | None:
            return bars[col][-1:].astype(dtype) if col in bars else None

        row: dict[str, Any] = {c: last(c, np.float64) for c in OHLCV_COLUMNS}
        row.update(
            features=runner.scaler.transform_array(values, runner.columns),
            gap_before=last("gap_before", bool),
            funding_rate=last("funding_rate", np.float64),
            spread_bps=last("spread_bps", np.float64),
            timestamps=bars["timestamp"][-1:].view("datetime64[ns]"),
            mark=None
            if head["mark"] is None
            else [last(c, np.float64) for c in MARK_COLUMNS],
        )
        return _concat_arrays(head, row)

    def _decide(self, runner: _Runner, env: Any, obs: Any) -> float:
        if runner.masked:
            action, _ = runner.policy.predict(obs, action_masks=env.action_masks())
        else:
            action, _ = runner.policy.predict(obs)
        return float(env.target_of(action))

    def open(self, history: pd.DataFrame | None = None) -> AccountState:
        """Load the account, or create it on ``history`` (its bars up to the first decision)."""
        cfg = self.config
        state = self.store.state(cfg.account)
        if state is None:
            if history is None or history.empty:
                raise PaperError(
                    f"paper account {cfg.account!r} does not exist yet: give its history bars"
                )
            state = self._create(history)
        else:
            for key, want in (
                ("symbol", cfg.symbol),
                ("timeframe", cfg.timeframe),
                ("model", cfg.model),
            ):
                have = getattr(state, key)
                if want is not None and want != have:
                    raise PaperError(
                        f"paper account {cfg.account!r} trades {key}={have!r}, the parameters say {want!r}: use another account name"
                    )
        self.state = state
        self.history = _slim(self.store.bars_frame(cfg.account))
        ledger = self.store.ledger(cfg.account)
        # the breakers' state is a function of the processed bars: replayed from the ledger
        self.breakers = CircuitBreakers.from_ledger(
            ledger, cfg.breakers, state.initial_equity
        )
        # a refused model change is recorded (and alerted) once per version, across restarts
        self._refused = {
            label[len("refused:") :]
            for text in ledger["event"]
            for label in str(text).split()
            if label.startswith("refused:")
        }
        self._hold(state.model_version)
        return state

    def _create(self, history: pd.DataFrame) -> AccountState:
        cfg = self.config
        bars = _slim(history.sort_values("timestamp", kind="stable"))
        symbols = (
            bars["symbol"].astype(str).unique()
            if "symbol" in bars
            else np.array([cfg.symbol or ""])
        )
        tfs = (
            bars["timeframe"].astype(str).unique()
            if "timeframe" in bars
            else np.array([cfg.timeframe or ""])
        )
        if len(symbols) != 1 or len(tfs) != 1:
            raise PaperError(
                f"paper history holds {len(symbols)} symbols and {len(tfs)} timeframes: one series only (set paper.symbol / paper.timeframe)"
            )
        version, bundle = self.source.current()
        runner = self._runner_for(version, bundle, bars)
        frame = self._feature_frame(bars, runner)
        # The first decision is at the last history bar's close. An env needs one bar after
        # its start, so a copy of the last row stands in for the next bar: the observation at
        # the start reads rows <= start only, and nobody steps into the stand-in.
        last = len(frame) - 1
        standin = frame.iloc[[last]].copy()
        standin["timestamp"] = standin["timestamp"] + (
            standin["timestamp"].iloc[0] - frame["timestamp"].iloc[last - 1]
        )
        padded = pd.concat([frame, standin], ignore_index=True)
        env = self._env(runner, self._arrays(runner, padded), last)
        equity = cfg.initial_equity
        obs, _ = env.reset(options={"start": last})
        if equity is not None and equity != runner.env.initial_equity:
            raise PaperError(
                f"paper.initial_equity={equity} differs from the model env's initial_equity={runner.env.initial_equity}: "
                "the observation's equity ratio depends on it; leave paper.initial_equity null"
            )
        target = self._decide(runner, env, obs)
        self.store.create(
            account=cfg.account,
            symbol=str(symbols[0]),
            timeframe=str(tfs[0]),
            model=cfg.model,
            model_version=version,
            history=bars,
            last_t=last,
            pending_target=target,
            snapshot=env.snapshot(),
            initial_equity=float(runner.env.initial_equity),
        )
        env.close()
        state = self.store.state(cfg.account)
        assert state is not None
        logger.info(
            "paper account %r created on %d bars; model v%s; first target %s",
            cfg.account,
            len(bars),
            version,
            target,
        )
        return state

    # ------------------------------------------------------------------ one bar

    def _conform(self, bar: Mapping[str, Any]) -> dict[str, Any]:
        """The bar as a row of the history table (its columns; gap flag from the bar times)."""
        from quant_arena.market import timeframe_seconds

        state, columns = self.state, self._columns
        assert state is not None and self._bars is not None
        row = dict(bar)
        if "timestamp" not in row:
            raise PaperError(
                f"paper account {state.account!r}: a bar without a timestamp: {sorted(row)}"
            )
        ts = _utc(row["timestamp"])
        row["timestamp"] = ts
        for key, want in (("symbol", state.symbol), ("timeframe", state.timeframe)):
            if key in row and str(row[key]) != want:
                raise PaperError(
                    f"paper account {state.account!r} trades {key}={want!r}; got a bar with {key}={row[key]!r} at {ts.isoformat()}"
                )
            row[key] = want
        vals = {}
        for key in (*_BAR_FIELDS, "volume"):
            try:
                vals[key] = float(row[key])
            except (KeyError, TypeError, ValueError) as exc:
                raise PaperError(
                    f"paper account {state.account!r}: bar {ts.isoformat()} has no usable {key!r} ({row.get(key)!r})"
                ) from exc
        o, h, lo, c = (vals[k] for k in _BAR_FIELDS)
        if not all(math.isfinite(v) and v > 0 for v in (o, h, lo, c)) or not (
            lo <= min(o, c) and h >= max(o, c)
        ):
            raise PaperError(
                f"paper account {state.account!r}: bar {ts.isoformat()} is not a valid candle "
                f"(open={o}, high={h}, low={lo}, close={c}); nothing was recorded for it"
            )
        if not (math.isfinite(vals["volume"]) and vals["volume"] >= 0):
            raise PaperError(
                f"paper account {state.account!r}: bar {ts.isoformat()} has volume={vals['volume']}; nothing was recorded for it"
            )
        step = pd.Timedelta(seconds=timeframe_seconds(state.timeframe))
        if "gap_before" in columns:
            row["gap_before"] = bool(ts - state.last_ts > step)
        out = {}
        for col in columns:
            if col in row:
                out[col] = row[col]
            elif col in ("is_filled", "out_of_order"):
                out[col] = False
            else:
                out[col] = NAN
        return out

    def process(self, bar: Mapping[str, Any]) -> dict[str, Any] | None:
        """Process one closed bar; None when it was recorded before (exactly once)."""
        state = self.state
        if state is None or self._bars is None or self.breakers is None:
            raise PaperError("PaperTrader.process: call open() first")
        ts = _utc(bar["timestamp"]) if "timestamp" in bar else None
        if ts is not None and ts <= state.last_ts:
            return None
        row = self._conform(bar)
        bars = self._grown(row)
        version, bundle = self.source.current()
        events: list[tuple[str, str]] = []
        labels: list[str] = []
        if version != state.model_version:
            version = self._admit(
                version, bundle, bars, row["timestamp"], events, labels
            )
        elif version not in self._runners:
            self._runner_for(version, bundle, self._frame_of(bars))
        runner = self._runners[version]
        arrays = self._grown_arrays(runner, bars)
        env = self._env(runner, arrays, state.last_t)
        env.restore(state.snapshot)
        obs = env.step_target(state.pending_target)
        acc = env.account
        equity = float(acc.equity)
        exposure = float(acc.exposure)
        status, reason = state.status, state.halt_reason
        if (
            status == "resume"
        ):  # an operator lifted the halt: the limits start afresh from here
            self.breakers.resume()
            labels.append("resume")
            status, reason = "trading", ""
        breaches = self.breakers.update(row["timestamp"], equity, exposure)
        stop = (
            "bankruptcy"
            if equity <= 0.0
            else ("liquidation" if acc.liquidated else None)
        )
        if status == "trading" and (breaches or stop):
            details = [b.detail for b in breaches] + (
                [f"{stop} at {row['timestamp'].isoformat()}"] if stop else []
            )
            status, reason = "halted", "; ".join(details)
            target = 0.0 if equity > 0.0 else NAN
            names = [b.name for b in breaches] + ([stop] if stop else [])
            labels.append("breach:" + ",".join(names))
            events.append(("breach", reason))
            self._breach_alert(row["timestamp"], names, reason, equity)
        elif status == "halted":
            target = NAN
        else:
            target = self._decide(runner, env, obs)
        ledger = {
            "t": int(acc.t),
            "model_version": version,
            **{k: float(getattr(acc, k)) for k in ACCOUNT_COLUMNS},
            "close": float(acc.mark),
            "exposure": exposure,
            "target": target,
            "liquidated": bool(acc.liquidated),
            "dropped": bool(acc.dropped),
            "event": " ".join(labels),
        }
        self.store.commit_bar(
            state,
            row,
            ledger,
            snapshot=env.snapshot(),
            pending_target=target,
            model_version=version,
            status=status,
            halt_reason=reason,
            events=events,
        )
        env.close()
        self._bars, self._history = bars, None
        self._books = {version: (len(bars["timestamp"]), arrays)}
        self._hold(version)
        return {"timestamp": row["timestamp"], **ledger, "status": status}

    def _hold(self, version: str) -> None:
        """Tell the model source which version the account trades (its cache keeps it)."""
        hold = getattr(self.source, "hold", None)
        if hold is not None:
            hold(version)

    def _bundle_of(self, version: str) -> Any:
        """The bundle of a version the account traded (the source loads it when needed)."""
        if version in self._runners:
            return self._runners[version].bundle
        have, bundle = self.source.current()
        if have == version:
            return bundle
        load = getattr(self.source, "load", None)
        if load is None:
            raise PaperError(
                f"paper account {self.config.account!r} trades model version {version}; its source cannot load it"
            )
        return load(version)

    def _admit(
        self,
        version: str,
        bundle: Any,
        bars: Mapping[str, np.ndarray],
        ts: pd.Timestamp,
        events: list[tuple[str, str]],
        labels: list[str],
    ) -> str:
        """The version that decides this bar when the alias points to ``version``, another one
        than the account trades: ``version`` (the change is recorded, with any change of the
        execution costs), or, when its ``fill_delay`` differs from the account's, the version
        the account trades (the change is refused: recorded and alerted once per version)."""
        state = self.state
        assert state is not None
        old_version = state.model_version
        if version in self._refused and old_version in self._runners:
            return old_version  # refused before: nothing new to record
        frame = self._frame_of(bars)
        new = self._runner_for(version, bundle, frame)
        delay = len(np.atleast_1d(state.snapshot["Q"]))  # the account's order queue
        want = int(new.env.execution.fill_delay)
        if want == delay:
            try:
                old = self._runner_for(old_version, self._bundle_of(old_version), frame)
            except Exception as exc:  # noqa: BLE001 - the change stands; only its detail is lost
                logger.warning(
                    "paper: model version %s cannot be loaded to compare its costs: %s",
                    old_version,
                    exc,
                )
                change = f"execution of version {old_version} unknown"
            else:
                change = _execution_change(old.env, new.env)
            events.append(
                (
                    "model",
                    f"model version {old_version} -> {version}"
                    + (f"; execution: {change}" if change else ""),
                )
            )
            labels.append(f"model:{version}")
            return version
        self._runner_for(old_version, self._bundle_of(old_version), frame)
        if version not in self._refused:
            self._refused.add(version)
            cfg = self.config
            reason = (
                f"model version {version} refused: its fill_delay={want} differs from the account's "
                f"fill_delay={delay} (model version {old_version}); orders in flight cannot change their "
                f"fill bar, so the account keeps trading version {old_version}"
            )
            events.append(("refused", reason))
            labels.append(f"refused:{version}")
            logger.warning(
                "paper account %r at %s: %s", cfg.account, ts.isoformat(), reason
            )
            self._send(
                "rejection",
                f"Paper account {cfg.account}: model version {version} refused",
                f"{reason}. To paper-trade version {version}, start a new account "
                f"(another paper.account); this one follows the alias again when it points to a "
                f"version with fill_delay={delay}.",
                {
                    "account": cfg.account,
                    "bar": ts.isoformat(),
                    "model": cfg.model,
                    "refused_version": version,
                    "traded_version": old_version,
                },
            )
        return old_version

    def _breach_alert(
        self, ts: pd.Timestamp, names: list[str], reason: str, equity: float
    ) -> None:
        cfg = self.config
        logger.warning(
            "paper account %r halted at %s: %s", cfg.account, ts.isoformat(), reason
        )
        self._send(
            "breach",
            f"Paper account {cfg.account} halted: {', '.join(names)}",
            f"{reason}. The position is ordered flat at this close; resume with "
            f"`python -m quant_arena.ops.paper resume --account {cfg.account} --store <url>`.",
            {
                "account": cfg.account,
                "bar": ts.isoformat(),
                "equity": equity,
                "model": cfg.model,
            },
        )

    def _send(self, kind: str, title: str, text: str, fields: dict[str, Any]) -> None:
        """An alert: sent now through the notifier (if any) and kept in :attr:`alerts`."""
        event: dict[str, Any] = {
            "kind": kind,
            "title": title,
            "text": text,
            "fields": fields,
        }
        if self.notifier is not None:
            self.notifier.send(
                Event(event["kind"], event["title"], event["text"], event["fields"])
            )
            event["sent"] = True
        self.alerts.append(event)

    def run(self, feed: Iterable[Mapping[str, Any]]) -> PaperRun:
        """Process every bar of ``feed`` (already recorded bars are skipped)."""
        if self.state is None:
            raise PaperError("PaperTrader.run: call open() first")
        out = PaperRun(self.config.account)
        t0 = time.perf_counter()
        for bar in feed:
            res = self.process(bar)
            if res is None:
                out.bars_skipped += 1
                continue
            out.bars_processed += 1
            ev = res["event"]
            for label in ev.split():
                if label.startswith("breach:"):
                    out.breaches.append(f"{res['timestamp'].isoformat()} {label[7:]}")
                elif label.startswith("model:"):
                    out.model_changes.append(
                        f"{res['timestamp'].isoformat()} v{label[6:]}"
                    )
                elif label.startswith("refused:"):
                    out.refused.append(f"{res['timestamp'].isoformat()} v{label[8:]}")
        out.seconds = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------ operator commands

    def resume(self, note: str = "") -> None:
        """Lift a halt: at the next bar the limits start afresh from the equity then
        (:meth:`CircuitBreakers.resume`: peak, day reference, VaR history) and the model decides
        again at its close; that bar's ledger event says ``resume``."""
        state = self.state
        if state is None:
            raise PaperError("PaperTrader.resume: call open() first")
        resume_account(self.store, state.account, note)
        state.status, state.halt_reason = "resume", ""


def resume_account(store: PaperStore, account: str, note: str = "") -> str:
    """The operator's ``resume`` of a halted account (the next bar applies it); returns the
    halt's reason. Raises :class:`PaperError` when the account does not exist or is not halted."""
    state = store.state(account)
    if state is None:
        raise PaperError(f"no paper account {account!r} in {store!r}")
    if state.status != "halted":
        raise PaperError(
            f"paper account {account!r} is not halted (status {state.status!r})"
        )
    store.set_status(
        account,
        "resume",
        "",
        "resume",
        note or f"resume requested after: {state.halt_reason}",
    )
    return state.halt_reason


# --------------------------------------------------------------------------- the expectation


def expected_backtest(trader: PaperTrader) -> pd.DataFrame:
    """The backtest of the model the account trades NOW over the account's bars since its first
    decision (:func:`quant_arena.ops.bundle_actions`: the studies' out-of-sample run, torch policy):
    what the paper record is compared with. One row per bar (``timestamp``, the ledger columns,
    ``model_version``, ``periods_per_year``). Without a breaker, a halt or a model change
    it equals the paper ledger bit for bit."""
    from quant_arena.ops.bundle import bundle_actions

    state, bars = trader.state, trader.history
    if state is None or bars is None:
        raise PaperError("expected_backtest: open the trader first")
    version = state.model_version
    runner = trader._runner_for(version, trader._bundle_of(version), bars)
    bundle = runner.bundle
    frame = trader._feature_frame(bars, runner)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    start = int((ts < state.start_ts).sum())
    if start >= len(frame) - 1:
        out = pd.DataFrame(
            {
                "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
                "equity": pd.Series([], dtype=float),
            }
        )
    else:
        out = bundle_actions(
            bundle, frame, start, len(frame), name=f"v{version}"
        ).ledger
    out["model_version"] = str(version)
    out["periods_per_year"] = float(runner.periods_per_year)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- operator CLI

DEFAULT_STORE = "sqlite:///data/07_model_output/paper.db"


def _parser() -> Any:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m quant_arena.ops.paper",
        description="Paper accounts: status, ledger, halt and resume (trading itself: kedro run --pipeline=paper).",
    )
    p.add_argument(
        "--store",
        default=os.environ.get(ENV_STORE) or DEFAULT_STORE,
        help=f"the paper database (SQLAlchemy URL; default ${ENV_STORE}, else {DEFAULT_STORE})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="every account, or one (--account)").add_argument(
        "--account"
    )
    led = sub.add_parser("ledger", help="an account's last ledger rows")
    led.add_argument("--account", required=True)
    led.add_argument("--tail", type=int, default=24)
    halt = sub.add_parser(
        "halt",
        help="halt an account by hand: the position is ordered flat at the next bar",
    )
    halt.add_argument("--account", required=True)
    halt.add_argument("--reason", required=True)
    res = sub.add_parser("resume", help="lift a halt (applied at the next bar)")
    res.add_argument("--account", required=True)
    res.add_argument("--note", default="")
    return p


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m quant_arena.ops.paper status|ledger|halt|resume``; 0 on success, 2 on a refused command."""
    args = _parser().parse_args(argv)
    store = PaperStore(args.store)
    try:
        if args.command == "status":
            frame = store.accounts_frame()
            if args.account:
                frame = frame[frame["account"] == args.account]
                if frame.empty:
                    _say(f"no paper account {args.account!r} in {store!r}")
                    return 2
            _say(
                frame.to_string(index=False)
                if len(frame)
                else f"no paper accounts in {store!r}"
            )
        elif args.command == "ledger":
            if store.state(args.account) is None:
                _say(f"no paper account {args.account!r} in {store!r}")
                return 2
            cols = [
                "timestamp",
                "model_version",
                "target",
                "filled",
                "equity",
                "units",
                "exposure",
                "status",
                "event",
            ]
            _say(
                store.ledger(args.account)[cols].tail(args.tail).to_string(index=False)
            )
        elif args.command == "halt":
            state = store.state(args.account)
            if state is None:
                _say(f"no paper account {args.account!r} in {store!r}")
                return 2
            if state.status == "halted":
                _say(
                    f"paper account {args.account!r} is already halted: {state.halt_reason}"
                )
                return 2
            store.set_status(
                args.account,
                "halted",
                f"halted by hand: {args.reason}",
                "halt",
                args.reason,
                flatten=True,
            )
            _say(
                f"paper account {args.account!r} halted; its position is ordered flat at the next bar"
            )
        else:
            try:
                reason = resume_account(store, args.account, args.note)
            except PaperError as exc:
                _say(str(exc))
                return 2
            _say(
                f"paper account {args.account!r} resumes at the next bar (it was halted: {reason})"
            )
        return 0
    finally:
        store.dispose()


if __name__ == "__main__":  # pragma: no cover - the module as a program
    raise SystemExit(main())
