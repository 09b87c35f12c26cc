"""The node boundary: a parameter block validated ONCE per run (per process), then shared.

Kedro hands every node its ``params:<key>`` block as a dict. The before-pipeline hook validates
each block a pipeline reads (:class:`quant_arena.hooks.ParameterValidationHooks`), a pipeline
whose shape depends on its parameters validates its block when it is built
(:func:`quant_arena.pipelines.build_conf.built_block`), and every node turns its block into the
typed model on its first line. All of them call :func:`validated`: the same block (by content)
is validated by its model once in a process and the frozen model is handed out again, so a
walk_forward run validates ``WalkForwardConfig`` once, not once per node (under
``ParallelRunner``: once per worker process). Below the nodes only typed models travel.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["validated"]

T = TypeVar("T", bound=BaseModel)

#: Validated models kept (the last ones used): a run holds a handful of blocks.
_MAX = 32
_cache: OrderedDict[tuple[type[BaseModel], str], BaseModel] = OrderedDict()
_lock = threading.Lock()


def _key(params: Any) -> str:
    """The block's content as text: equal blocks (YAML values: mappings, lists, scalars, dates)
    give equal keys, whatever their dict order."""
    return json.dumps(params, sort_keys=True, default=repr)


def validated(model: type[T], params: Mapping[str, Any] | T | None) -> T:
    """``params`` validated by ``model`` (a frozen pydantic model); a block with the same content
    validated before in this process returns the same model without validating it again. A model
    instance is returned as it is.

    Raises:
        pydantic.ValidationError: naming the invalid parameters (nothing is cached then).
    """
    if isinstance(params, model):
        return params
    if params is not None and not isinstance(params, Mapping):
        return model.model_validate(
            params
        )  # not a parameter block: validated as it is, not kept
    block = dict(params or {})
    key = (model, _key(block))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit  # type: ignore[return-value]
    out = model.model_validate(block)
    with _lock:
        _cache[key] = out
        while len(_cache) > _MAX:
            _cache.popitem(last=False)
    return out
