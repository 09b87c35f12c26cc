"""An in-memory stand-in for :class:`quant_arena.ops.ModelRegistry`: the calls a retrain makes,
recorded."""

from __future__ import annotations

import dataclasses
from typing import Any


class Registry:
    """The ModelRegistry calls a retrain makes, in memory."""

    def __init__(self, champion: Any = None, promote_wins: bool = True) -> None:
        self.bundles: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}
        self.calls: list[tuple] = []
        self.promote_wins = promote_wins
        if champion is not None:
            self.bundles["1"] = champion
            self.aliases["champion"] = "1"

    def version_of(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    def load(self, alias: str) -> Any:
        self.calls.append(("load", alias))
        return dataclasses.replace(self.bundles[self.aliases[alias]], env_config=dict(self.bundles[self.aliases[alias]].env_config))

    def register(self, bundle: Any, *, run_id: str | None = None, tags: Any = None) -> str:
        version = str(len(self.bundles) + 1)
        self.bundles[version] = bundle
        self.calls.append(("register", version, dict(tags or {})))
        return version

    def set_challenger(self, version: str) -> None:
        self.calls.append(("set_challenger", version))
        self.aliases["challenger"] = version

    def promote(self, version: str, *, expected_champion: str | None, reason: str) -> bool:
        self.calls.append(("promote", version, expected_champion))
        if self.promote_wins:
            self.aliases["champion"] = version
        return self.promote_wins
