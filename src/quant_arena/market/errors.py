"""Errors that name what went wrong with the data: the file, the row and the rule."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. The message always names the file, the row and the rule when known.

    Attributes:
        file: path or name of the source (``None`` for in-memory frames).
        row: 1-based line number in the file, or a row label / timestamp, when known.
        rule: short name of the rule or check that failed (for example ``"missing_columns"``).
    """

    def __init__(self, message: str, *, file: object = None, row: object = None, rule: str | None = None):
        self.file = None if file is None else str(file)
        self.row = row
        self.rule = rule
        parts = []
        if self.file is not None:
            parts.append(f"file {self.file}")
        if row is not None:
            parts.append(f"row {row}")
        if rule is not None:
            parts.append(f"rule {rule}")
        prefix = (", ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message)


class DataWarning(UserWarning):
    """Data read under an assumption the user should confirm (a default time zone, an inferred
    point size). The message names the file and the rule, like :class:`DataError`."""

    def __init__(self, message: str, *, file: object = None, rule: str | None = None):
        self.file = None if file is None else str(file)
        self.rule = rule
        parts = [p for p in (f"file {self.file}" if self.file else "", f"rule {rule}" if rule else "") if p]
        super().__init__((", ".join(parts) + ": " if parts else "") + message)
