"""The paper account's state in a database: SQLite by default, PostgreSQL (or any SQLAlchemy URL).

Four tables, keyed by the account's name, so several accounts share one database:

``paper_accounts``  one row per account: symbol, timeframe, model, status (``trading``,
                    ``halted`` and why, or ``resume``: an operator lifted the halt, applied at
                    the next bar), the last processed bar, the order pending at its close
                    (the target exposure), the model version that decided it, and the simulator
                    snapshot (:meth:`quant_arena.envs.TradingEnv.snapshot`, JSON; floats written
                    with ``repr`` so they read back bit for bit).
``paper_bars``      every bar the account has seen, oldest first (the warm-up history and each
                    processed bar): the features of the next bar are rebuilt from them.
``paper_ledger``    one row per processed bar: the simulator's ledger of the step into the bar,
                    equity, cash, units, the target ordered at its close, the model version,
                    status and event.
``paper_events``    an audit trail: creation, breaches, halts, resumes, model changes.

**Exactly once.** :meth:`PaperStore.commit_bar` writes the bar, its ledger row and the new
account state in ONE transaction, and moves the account's ``last_ts`` only if it still holds
the bar before (compare-and-set): a process killed at any point leaves either the whole bar or
none of it, and two processes feeding the same account cannot both record a bar (the loser gets
:class:`PaperConflict`). ``(account, ts)`` is the primary key of the bar and ledger tables.

Times are stored as integer nanoseconds since the epoch (UTC), floats as double precision
(bit-exact on SQLite and PostgreSQL; NaN is stored as NULL and read back as NaN).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.sim import LEDGER_FIELDS

__all__ = [
    "ACCOUNT_COLUMNS",
    "LEDGER_COLUMNS",
    "PAPER_LEDGER_COLUMNS",
    "AccountState",
    "PaperConflict",
    "PaperStore",
    "PaperStoreError",
    "decode_snapshot",
    "encode_snapshot",
]

#: Float columns of the ledger, in order (the simulator's ledger, then the account after the close).
#: the simulator's per-bar ledger and account columns, as the backtest's ledger names them
ACCOUNT_COLUMNS: tuple[str, ...] = (
    *LEDGER_FIELDS,
    "equity",
    "cash",
    "units",
    "filled",
    "unfilled",
)
_FLOATS: tuple[str, ...] = (*ACCOUNT_COLUMNS, "close", "exposure", "target")
#: Every ledger column, in the order :meth:`PaperStore.ledger` returns them.
LEDGER_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "t",
    "model_version",
    *_FLOATS,
    "liquidated",
    "dropped",
    "status",
    "event",
)
PAPER_LEDGER_COLUMNS = LEDGER_COLUMNS  # the name on the ops face


class PaperStoreError(RuntimeError):
    """The store cannot do what was asked (unknown account, mismatched account settings, ...)."""


class PaperConflict(PaperStoreError):
    """Another process recorded a bar of this account first (the compare-and-set lost)."""


@dataclass
class AccountState:
    """An account's row (see the module docstring)."""

    account: str
    symbol: str
    timeframe: str
    model: str
    status: str
    halt_reason: str
    last_ts: pd.Timestamp
    last_t: int
    pending_target: float
    model_version: str
    snapshot: dict[str, Any]
    initial_equity: float
    start_ts: pd.Timestamp

    @property
    def halted(self) -> bool:
        return self.status == "halted"


# --------------------------------------------------------------------------- encoding


def _ns(ts: Any) -> int:
    return (
        int(pd.Timestamp(ts).tz_convert("UTC").value)
        if pd.Timestamp(ts).tzinfo
        else int(pd.Timestamp(ts).value)
    )


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _float(x: Any) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def _unfloat(x: Any) -> float:
    return math.nan if x is None else float(x)


def encode_snapshot(state: Mapping[str, Any]) -> str:
    """JSON of a simulator snapshot (arrays as lists; floats round-trip exactly, NaN/inf too)."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        arr = np.asarray(value)
        out[key] = (
            {"dtype": str(arr.dtype), "values": arr.tolist()} if arr.ndim else value
        )
    return json.dumps(out, allow_nan=True)


def decode_snapshot(text: str) -> dict[str, Any]:
    """The inverse of :func:`encode_snapshot`."""
    raw = json.loads(text)
    return {
        k: np.asarray(v["values"], dtype=v["dtype"]) if isinstance(v, dict) else v
        for k, v in raw.items()
    }


def _bar_payload(row: Mapping[str, Any]) -> str:
    clean: dict[str, Any] = {}
    for key, value in row.items():
        if key == "timestamp":
            continue
        if isinstance(value, np.bool_ | bool):
            clean[key] = bool(value)
        elif isinstance(value, np.integer | int):
            clean[key] = int(value)
        elif isinstance(value, np.floating | float):
            clean[key] = float(value)
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            clean[key] = None
        else:
            clean[key] = str(value)
    return json.dumps(clean, allow_nan=True)


# --------------------------------------------------------------------------- the store


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead log, synced at checkpoints: a commit is on disk before ``commit`` returns as
    far as a killed process is concerned (SIGKILL loses nothing committed; a power cut may lose
    the last commits but never leaves half a bar), and costs no fsync per bar."""
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class PaperStore:
    """The paper-trading tables in the database at ``url`` (created on first use).

    Args:
        url: a SQLAlchemy URL: ``sqlite:///paper.db`` (default in the pipeline's parameters),
            ``postgresql://user@host/db`` ...; the password, if any, never appears in messages.
    """

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        url = str(url)
        if url.startswith(
            ("postgresql://", "postgres://")
        ):  # the declared driver (psycopg2-binary)
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        self.url = url
        self._sa = sa
        kwargs: dict[str, Any] = {"poolclass": NullPool}
        if self.url.startswith("sqlite"):
            # one connection kept open (closing the last one checkpoints the WAL, with an fsync)
            kwargs = {"connect_args": {"timeout": 30}}
            path = self.url.split(":///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        md = sa.MetaData()
        self.accounts = sa.Table(
            "paper_accounts",
            md,
            sa.Column("account", sa.String(200), primary_key=True),
            sa.Column("symbol", sa.String(100), nullable=False),
            sa.Column("timeframe", sa.String(20), nullable=False),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("halt_reason", sa.Text, nullable=False, default=""),
            sa.Column("start_ts", sa.BigInteger, nullable=False),
            sa.Column("last_ts", sa.BigInteger, nullable=False),
            sa.Column("last_t", sa.Integer, nullable=False),
            sa.Column("pending_target", sa.Float(precision=53)),
            sa.Column("model_version", sa.String(50), nullable=False),
            sa.Column("snapshot", sa.Text, nullable=False),
            sa.Column("initial_equity", sa.Float(precision=53), nullable=False),
            sa.Column("updated_at", sa.Float(precision=53), nullable=False),
        )
        self.bars = sa.Table(
            "paper_bars",
            md,
            sa.Column("account", sa.String(200), primary_key=True),
            sa.Column("ts", sa.BigInteger, primary_key=True),
            sa.Column("payload", sa.Text, nullable=False),
        )
        ledger_cols = [
            sa.Column("account", sa.String(200), primary_key=True),
            sa.Column("ts", sa.BigInteger, primary_key=True),
            sa.Column("t", sa.Integer, nullable=False),
            sa.Column("model_version", sa.String(50), nullable=False),
            *[sa.Column(c, sa.Float(precision=53)) for c in _FLOATS],
            sa.Column("liquidated", sa.Boolean, nullable=False),
            sa.Column("dropped", sa.Boolean, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("event", sa.Text, nullable=False, default=""),
        ]
        self.ledger_table = sa.Table("paper_ledger", md, *ledger_cols)
        self.events = sa.Table(
            "paper_events",
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("account", sa.String(200), nullable=False, index=True),
            sa.Column("ts", sa.BigInteger),
            sa.Column("kind", sa.String(30), nullable=False),
            sa.Column("detail", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float(precision=53), nullable=False),
        )
        md.create_all(self.engine)

    def __repr__(self) -> str:
        return f"PaperStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------------- reads

    def state(self, account: str) -> AccountState | None:
        """The account's row, or None when it does not exist."""
        sa = self._sa
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(self.accounts).where(self.accounts.c.account == account)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return AccountState(
            account=row["account"],
            symbol=row["symbol"],
            timeframe=row["timeframe"],
            model=row["model"],
            status=row["status"],
            halt_reason=row["halt_reason"] or "",
            last_ts=_ts(row["last_ts"]),
            last_t=int(row["last_t"]),
            pending_target=_unfloat(row["pending_target"]),
            model_version=row["model_version"],
            snapshot=decode_snapshot(row["snapshot"]),
            initial_equity=float(row["initial_equity"]),
            start_ts=_ts(row["start_ts"]),
        )

    def bars_frame(self, account: str) -> pd.DataFrame:
        """Every stored bar of the account, oldest first (``timestamp`` + the bar's columns)."""
        sa = self._sa
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self.bars.c.ts, self.bars.c.payload)
                .where(self.bars.c.account == account)
                .order_by(self.bars.c.ts)
            ).all()
        records = []
        for ts, payload in rows:
            rec = {"timestamp": _ts(ts)}
            rec.update(
                {
                    k: (math.nan if v is None else v)
                    for k, v in json.loads(payload).items()
                }
            )
            records.append(rec)
        return (
            pd.DataFrame.from_records(records)
            if records
            else pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})
        )

    def ledger(self, account: str) -> pd.DataFrame:
        """The account's ledger (:data:`LEDGER_COLUMNS`), oldest bar first."""
        sa = self._sa
        t = self.ledger_table
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(t).where(t.c.account == account).order_by(t.c.ts)
                )
                .mappings()
                .all()
            )
        data: dict[str, Any] = {
            "timestamp": pd.to_datetime([r["ts"] for r in rows], utc=True, unit="ns"),
            "t": np.array([r["t"] for r in rows], dtype=np.int64),
            "model_version": [str(r["model_version"]) for r in rows],
        }
        for c in _FLOATS:
            data[c] = np.array([_unfloat(r[c]) for r in rows], dtype=np.float64)
        data["liquidated"] = np.array([bool(r["liquidated"]) for r in rows], dtype=bool)
        data["dropped"] = np.array([bool(r["dropped"]) for r in rows], dtype=bool)
        data["status"] = [str(r["status"]) for r in rows]
        data["event"] = [str(r["event"] or "") for r in rows]
        return pd.DataFrame(data, columns=list(LEDGER_COLUMNS))

    def events_frame(self, account: str) -> pd.DataFrame:
        """The account's audit trail, oldest first."""
        sa = self._sa
        e = self.events
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(e).where(e.c.account == account).order_by(e.c.id)
                )
                .mappings()
                .all()
            )
        return pd.DataFrame(
            {
                "timestamp": pd.to_datetime(
                    [r["ts"] for r in rows], utc=True, unit="ns"
                ),
                "kind": [r["kind"] for r in rows],
                "detail": [r["detail"] for r in rows],
                "recorded_at": pd.to_datetime(
                    [r["created_at"] for r in rows], utc=True, unit="s"
                ),
            }
        )

    # ----------------------------------------------------------------------- writes

    def create(
        self,
        *,
        account: str,
        symbol: str,
        timeframe: str,
        model: str,
        model_version: str,
        history: pd.DataFrame,
        last_t: int,
        pending_target: float,
        snapshot: Mapping[str, Any],
        initial_equity: float,
    ) -> None:
        """Create the account with its warm-up ``history`` (every bar up to the first decision)
        and the first decision, in one transaction (a second creator gets :class:`PaperConflict`)."""
        sa = self._sa
        from sqlalchemy.exc import IntegrityError

        last = history["timestamp"].iloc[-1]
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(self.accounts).values(
                        account=account,
                        symbol=symbol,
                        timeframe=timeframe,
                        model=model,
                        status="trading",
                        halt_reason="",
                        start_ts=_ns(last),
                        last_ts=_ns(last),
                        last_t=int(last_t),
                        pending_target=_float(pending_target),
                        model_version=str(model_version),
                        snapshot=encode_snapshot(snapshot),
                        initial_equity=float(initial_equity),
                        updated_at=now,
                    )
                )
                conn.execute(
                    sa.insert(self.bars), list(self._bar_rows(account, history))
                )
                conn.execute(
                    sa.insert(self.events).values(
                        account=account,
                        ts=_ns(last),
                        kind="create",
                        detail=f"account created on {len(history)} history bars; model {model} v{model_version}",
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise PaperConflict(
                f"paper account {account!r} already exists in {self!r}"
            ) from exc

    def _bar_rows(self, account: str, bars: pd.DataFrame) -> Iterable[dict[str, Any]]:
        for row in bars.to_dict("records"):
            yield {
                "account": account,
                "ts": _ns(row["timestamp"]),
                "payload": _bar_payload(row),
            }

    def commit_bar(
        self,
        state: AccountState,
        bar: Mapping[str, Any],
        ledger: Mapping[str, Any],
        *,
        snapshot: Mapping[str, Any],
        pending_target: float,
        model_version: str,
        status: str,
        halt_reason: str,
        events: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record one processed bar atomically (see "Exactly once" in the module docstring)."""
        sa = self._sa
        from sqlalchemy.exc import IntegrityError

        ts = _ns(bar["timestamp"])
        now = time.time()
        acc = self.accounts
        try:
            with self.engine.begin() as conn:
                res = conn.execute(
                    sa.update(acc)
                    .where(
                        acc.c.account == state.account,
                        acc.c.last_ts == _ns(state.last_ts),
                    )
                    .values(
                        last_ts=ts,
                        last_t=int(ledger["t"]),
                        pending_target=_float(pending_target),
                        model_version=str(model_version),
                        snapshot=encode_snapshot(snapshot),
                        status=status,
                        halt_reason=halt_reason,
                        updated_at=now,
                    )
                )
                if res.rowcount != 1:
                    raise PaperConflict(
                        f"paper account {state.account!r}: another process moved it past "
                        f"{state.last_ts.isoformat()} before bar {pd.Timestamp(bar['timestamp']).isoformat()} was recorded"
                    )
                conn.execute(
                    sa.insert(self.bars).values(
                        account=state.account, ts=ts, payload=_bar_payload(bar)
                    )
                )
                row = {
                    "account": state.account,
                    "ts": ts,
                    "t": int(ledger["t"]),
                    "model_version": str(ledger["model_version"]),
                    "status": status,
                    "event": str(ledger.get("event", "")),
                    "liquidated": bool(ledger["liquidated"]),
                    "dropped": bool(ledger["dropped"]),
                }
                row.update({c: _float(ledger[c]) for c in _FLOATS})
                conn.execute(sa.insert(self.ledger_table).values(**row))
                for kind, detail in events:
                    conn.execute(
                        sa.insert(self.events).values(
                            account=state.account,
                            ts=ts,
                            kind=kind,
                            detail=detail,
                            created_at=now,
                        )
                    )
        except IntegrityError as exc:
            raise PaperConflict(
                f"paper account {state.account!r}: bar {pd.Timestamp(bar['timestamp']).isoformat()} is already recorded"
            ) from exc
        state.last_ts = _ts(ts)
        state.last_t = int(ledger["t"])
        state.pending_target = float(pending_target)
        state.model_version = str(model_version)
        state.snapshot = dict(snapshot)
        state.status = status
        state.halt_reason = halt_reason

    def set_status(
        self,
        account: str,
        status: str,
        reason: str,
        kind: str,
        detail: str,
        *,
        flatten: bool = False,
    ) -> None:
        """Halt or resume an account outside a bar (an operator's command), with an event;
        ``flatten``: replace the pending order by a flat target (filled at the next bar's open)."""
        sa = self._sa
        acc = self.accounts
        values: dict[str, Any] = {
            "status": status,
            "halt_reason": reason,
            "updated_at": time.time(),
        }
        if flatten:
            values["pending_target"] = 0.0
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(acc).where(acc.c.account == account).values(**values)
            )
            if res.rowcount != 1:
                raise PaperStoreError(f"no paper account {account!r} in {self!r}")
            conn.execute(
                sa.insert(self.events).values(
                    account=account,
                    ts=None,
                    kind=kind,
                    detail=detail,
                    created_at=time.time(),
                )
            )

    def accounts_frame(self) -> pd.DataFrame:
        """Every account: name, symbol, timeframe, model, version, status, last bar."""
        sa = self._sa
        with self.engine.connect() as conn:
            rows = (
                conn.execute(sa.select(self.accounts).order_by(self.accounts.c.account))
                .mappings()
                .all()
            )
        return pd.DataFrame(
            [
                {
                    "account": r["account"],
                    "symbol": r["symbol"],
                    "timeframe": r["timeframe"],
                    "model": r["model"],
                    "model_version": r["model_version"],
                    "status": r["status"],
                    "halt_reason": r["halt_reason"],
                    "last_bar": _ts(r["last_ts"]),
                }
                for r in rows
            ],
            columns=[
                "account",
                "symbol",
                "timeframe",
                "model",
                "model_version",
                "status",
                "halt_reason",
                "last_bar",
            ],
        )
