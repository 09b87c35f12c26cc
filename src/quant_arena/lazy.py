"""Lazy public faces: a package exports names from its modules without importing them up front.

A package whose modules are heavy (torch, Stable-Baselines3, Optuna) or import each other's
floors lists its face as ``{name: module}`` and hands it to :func:`lazy_face`; a name is imported
the first time it is read (PEP 562), so ``from quant_arena.tuning import mask_url`` does not pull
in torch and importing one module of a package does not import all of them::

    _EXPORTS = {"train_agent": "training", ...}
    __all__ = [*_EXPORTS]
    __getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())

This module imports nothing from the project (the lowest floor).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_face"]


def lazy_face(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` exporting ``exports`` (name -> module of the package).

    A name read once is stored in ``namespace`` (the package's ``globals()``), so later reads
    are plain attribute lookups.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
