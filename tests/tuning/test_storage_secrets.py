"""A storage password never reaches a log record or an error message.

The server here is 127.0.0.1 port 1, where nothing listens: every attempt ends in "connection
refused" (or earlier, for a malformed URL). The live-server case is in test_postgres_workers.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from quant_arena.study import TuneConfig
from quant_arena.tuning import make_storage, mask_url, redact, run_study

from . import _data

SECRET = "s3cr3t"
REFUSED = f"postgresql+psycopg2://optuna:{SECRET}@127.0.0.1:1/x"
AT_IN_PASSWORD = "postgresql+psycopg2://optuna:s3@cr3t@127.0.0.1:1/x"


def _everything(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """What a user can see: the error, its traceback as printed, and every log record."""
    records = "\n".join(r.getMessage() for r in caplog.records)
    return f"{exc}\n{exc!r}\n{''.join(traceback.format_exception(exc))}\n{records}\n{caplog.text}"


@pytest.mark.parametrize(
    ("url", "masked", "leaks"),
    [
        (REFUSED, "postgresql+psycopg2://optuna:***@127.0.0.1:1/x", [SECRET]),
        # the scheme forgotten: not a URL SQLAlchemy can parse, still a password to hide
        (f"optuna:{SECRET}@127.0.0.1:1/x", "optuna:***@127.0.0.1:1/x", [SECRET]),
    ],
)
def test_make_storage_errors_and_logs_hide_the_password(
    url, masked, leaks, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError, match="cannot open the Optuna storage") as info:
        make_storage(url, {"heartbeat_interval": 1, "grace_period": 2})
    assert masked in str(info.value)  # says which storage, without the secret
    seen = _everything(info.value, caplog)
    assert not [s for s in leaks if s in seen], seen
    assert mask_url(url).endswith(masked)


def test_an_unescaped_at_sign_in_the_password_is_refused_before_the_driver_sees_it(
    caplog,
) -> None:
    # SQLAlchemy would read password "s3" and host "cr3t@127.0.0.1", which the driver's
    # "could not translate host name" error quotes
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match="unescaped '@'.*%40") as info:
        make_storage(AT_IN_PASSWORD, {})
    assert "optuna:***@127.0.0.1:1/x" in str(info.value)
    seen = _everything(info.value, caplog)
    assert "s3@" not in seen and "cr3t" not in seen, seen
    assert (
        mask_url("postgresql://optuna:s3@cr3t@h/db") == "postgresql://optuna:***@h/db"
    )


def test_connection_refused_says_so_without_the_password(caplog) -> None:
    pytest.importorskip("psycopg2")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError, match="Connection refused") as info:
        run_study(
            TuneConfig.model_validate(_data.params()),
            lambda t: 0.0,
            storage_url=REFUSED,
            n_trials=1,
        )
    assert SECRET not in _everything(info.value, caplog)


def test_the_tune_node_from_the_catalog_entry_never_shows_the_password(caplog) -> None:
    from kedro.io import DataCatalog

    from quant_arena.pipelines.tune.nodes import run_tuning

    caplog.set_level(logging.DEBUG)
    catalog = DataCatalog.from_config(
        {
            "tune_storage": {
                "type": "quant_arena.pipelines.tune.storage.TuneStorageDataset",
                "credentials": "tune_storage",
            }
        },
        credentials={
            "tune_storage": {
                "username": "optuna",
                "password": SECRET,
                "host": "127.0.0.1",
                "port": 1,
                "database": "x",
            }
        },
    )
    url = catalog.load("tune_storage")
    assert SECRET in url  # the node gets the real URL ...
    with pytest.raises(RuntimeError, match=r"optuna:\*\*\*@127\.0\.0\.1:1/x") as info:
        run_tuning(_data.features(), url, _data.params())
    assert SECRET not in _everything(info.value, caplog) + str(catalog) + repr(
        catalog["tune_storage"]
    )  # ... nobody else


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa:ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u:p%40ss@h:5432/db?sslmode=require",
            "postgresql://u:***@h:5432/db?sslmode=require",
        ),
        ("postgresql://u:s3cr3t@/db?host=/tmp", "postgresql://u:***@/db?host=/tmp"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////home/u@x/optuna.db", "sqlite:////home/u@x/optuna.db"),
    ],
)
def test_mask_url_hides_any_password_and_keeps_the_rest(url, expected) -> None:
    assert mask_url(url) == expected


def test_redact_masks_urls_in_a_message_and_the_storage_password_anywhere() -> None:
    message = (
        "failed on postgresql://a:b@c@h/db; server said: password 's3cr3t%' rejected"
    )
    out = redact(message, "postgresql://optuna:s3cr3t%25@h/db")  # %25 = '%'
    assert (
        out == "failed on postgresql://a:***@h/db; server said: password '***' rejected"
    )
    assert redact("no secret here", "sqlite:///x.db") == "no secret here"
