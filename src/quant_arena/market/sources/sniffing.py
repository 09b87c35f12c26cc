"""Sniffing a file: what its bytes hold (gzip, text, JSON, parquet, feather; UTF-8 or UTF-16),
whether its name agrees, and which format its first lines look like (the ``auto`` format)."""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Callable
from pathlib import Path

from quant_arena.market.errors import DataError
from quant_arena.market.sources.parsing import _norm

_EXT_KIND = {
    ".csv": "text",
    ".txt": "text",
    ".tsv": "text",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "feather",
    ".ftr": "feather",
    ".arrow": "feather",
}


def _head(path: Path, n: int = 65536) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (2, b"\x1f\x8b", "gzip"),
    (4, b"PAR1", "parquet"),
    (6, b"ARROW1", "feather"),
    (4, b"PK\x03\x04", "zip"),
)


def _content_kind(head: bytes) -> str:
    """What raw bytes look like: gzip, parquet, feather, zip, json, text or binary."""
    for size, magic, kind in _MAGIC:
        if head[:size] == magic:
            return kind
    if b"\x00" in head[:4096]:
        return "binary"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if stripped[:1] in (b"[", b"{") else "text"


def _gunzip_head(path: Path, n: int = 65536) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"gzip data is corrupt or truncated ({exc})",
            file=path,
            row=1,
            rule="corrupt_file",
        ) from exc


class Sniffed:
    """The real content of a file: ``kind`` (text/json/parquet/feather), gzip or not, head bytes."""

    def __init__(
        self, kind: str, gzipped: bool, head: bytes, encoding: str = "utf-8-sig"
    ):
        self.kind = kind
        self.gzipped = gzipped
        self.head = head  # for UTF-16 text: re-encoded as UTF-8
        self.encoding = encoding

    @property
    def compression(self) -> str | None:
        return "gzip" if self.gzipped else None


def sniff_file(path: str | Path) -> Sniffed:
    """Look at a file's bytes (not its name), check the name agrees, and say what it holds.

    Raises:
        DataError: ``empty_file`` for a file with no bytes or only whitespace;
            ``file_type_mismatch`` when the extension promises something else than the content
            (a ``.json`` holding CSV, a ``.parquet`` holding text, a ``.csv`` holding gzip, a
            ``.gz`` that is not gzip); ``corrupt_file`` for unreadable gzip;
            ``unknown_format`` for binary content that is none of the supported kinds.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"OHLCV source file not found: {path}")
    head = _head(path)
    kind = _content_kind(head)
    suffixes = [s.lower() for s in path.suffixes]
    claims_gzip = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    gzipped = kind == "gzip"
    if claims_gzip and not gzipped:
        raise DataError(
            f"the name ends in {suffixes[-1]!r} but the content is not gzip (it looks like {kind})",
            file=path,
            row=1,
            rule="file_type_mismatch",
        )
    if gzipped:
        if not claims_gzip:
            raise DataError(
                "the content is gzip-compressed but the name does not end in '.gz' "
                "(rename it, e.g. to '<name>.csv.gz')",
                file=path,
                row=1,
                rule="file_type_mismatch",
            )
        head = _gunzip_head(path)
        kind = _content_kind(head)
        if kind == "gzip":
            raise DataError(
                "doubly gzip-compressed content is not supported",
                file=path,
                row=1,
                rule="unknown_format",
            )
        suffixes = suffixes[:-1]
    encoding = "utf-8-sig"
    if head[:2] in (
        b"\xff\xfe",
        b"\xfe\xff",
    ):  # UTF-16 with a byte-order mark (MetaTrader writes it)
        encoding = "utf-16"
        head = (
            head[: len(head) // 2 * 2].decode("utf-16", errors="ignore").encode("utf-8")
        )
        kind = _content_kind(head)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise DataError("the file is empty", file=path, row=1, rule="empty_file")
    claimed = _EXT_KIND.get(suffixes[-1]) if suffixes else None
    if claimed is not None and claimed != kind:
        raise DataError(
            f"the extension {suffixes[-1]!r} says {claimed} but the content looks like {kind}",
            file=path,
            row=1,
            rule="file_type_mismatch",
        )
    if kind in ("zip", "binary"):
        raise DataError(
            f"the content is {kind} data, not CSV, JSON, parquet or feather",
            file=path,
            row=1,
            rule="unknown_format",
        )
    return Sniffed(kind, gzipped, head, encoding)


def _text_lines(sniffed: Sniffed, n: int = 6) -> list[str]:
    text = sniffed.head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[:n]


def _split_csv_line(line: str) -> list[str]:
    return next(csv.reader([line]))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | Path) -> str:
    """Name the format of a file by sniffing its content (the ``auto`` format).

    Binary parquet -> ``parquet``; Arrow IPC -> ``freqtrade_feather``; JSON -> ``freqtrade_json``;
    for CSV text (gzip or not) the first lines decide: a ``<DATE>`` header -> ``mt5``; a
    CryptoDataDownload banner or a
    ``date, symbol, ..., volume_<base>`` header -> ``cryptodatadownload``; 12 numeric fields
    or an ``open_time`` header -> ``binance``; ``X:open`` columns -> ``wide``; a ``Ticker`` /
    ``Symbol`` column -> ``long``; ``Time`` / ``Gmt time`` with ``dd.mm.yyyy`` values ->
    ``forex``; ``Date`` plus ``Adj Close`` -> ``yahoo``; anything else -> ``csv``.
    """
    sniffed = sniff_file(path)
    if sniffed.kind == "parquet":
        return "parquet"
    if sniffed.kind == "feather":
        return "freqtrade_feather"
    if sniffed.kind == "json":
        return "freqtrade_json"
    return _detect_text_format(_text_lines(sniffed))


def _looks_cdd(lines: list[str], first: list[str], header: list[str]) -> bool:
    if "cryptodatadownload" in lines[0].lower().replace(" ", ""):
        return True
    if len(first) <= 2 and len(lines) > 1:  # some other banner line
        nxt = [_norm(f) for f in _split_csv_line(lines[1])]
        return ("date" in nxt or "unix" in nxt) and "open" in nxt
    has_base_volume = any(h.startswith("volume_") for h in header)
    return (
        "symbol" in header
        and has_base_volume
        and ("date" in header or "unix" in header)
    )


def _looks_binance(first: list[str], header: list[str]) -> bool:
    if len(first) != len(BINANCE_KLINE_COLUMNS):
        return False
    return header[0] == "open_time" or all(_is_number(f) for f in first)


def _looks_forex(lines: list[str], header: list[str]) -> bool:
    if (
        not header
        or header[0] not in ("time", "gmt_time", "local_time")
        or len(lines) < 2
    ):
        return False
    value = _split_csv_line(lines[1])[0].strip()
    return re.match(r"^\d{2}\.\d{2}\.\d{4}", value) is not None


def _detect_text_format(lines: list[str]) -> str:
    first = _split_csv_line(lines[0])
    header = [_norm(f) for f in first]
    rules: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("mt5", lambda: _looks_mt5(lines)),
        ("cryptodatadownload", lambda: _looks_cdd(lines, first, header)),
        ("binance", lambda: _looks_binance(first, header)),
        ("wide", lambda: any(":" in f for f in first[1:])),
        ("long", lambda: "ticker" in header or "symbol" in header),
        ("forex", lambda: _looks_forex(lines, header)),
        ("yahoo", lambda: "date" in header and "adj_close" in header),
    )
    for name, test in rules:
        if test():
            return name
    return "csv"


BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


def _looks_mt5(lines: list[str]) -> bool:
    return lines[0].strip().upper().startswith("<DATE>")
