"""Agents tests share a 2-core machine with others: one torch thread, no oversubscription."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
