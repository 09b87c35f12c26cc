"""Arena matches and a league table: every player on the same unseen bars, relative results,
Bradley-Terry ratings (on the Elo scale) with bootstrap uncertainty.

* :func:`run_match`: one match: all players in one :class:`~quant_arena.envs.arena_env.ArenaEnv`
  over ``[start, end)`` of the data (same kernel, same execution costs for everyone); returns
  every player's log return, relative return (its log return minus the players' mean: the
  arena's zero-sum reward summed over the match) and final equity.
* :func:`run_matches`: ``n`` matches on sub-windows of a window (seeded start offsets).
* :func:`pairwise_results`: wins / draws / losses of every pair over a set of matches.
* :func:`bradley_terry`: ratings from pairwise results (MM algorithm, a draw counts half a win,
  a small prior keeps unbeaten players finite), as Elo points (mean 0 over the players).
* :func:`league_table`: ratings, their bootstrap std and CI over the matches (resampled with
  replacement), wins/draws/losses, mean relative return.

Players are policies ``obs -> action`` (deterministic: a trained model's greedy policy, a fixed
policy name of :data:`~quant_arena.envs.arena_env.OPPONENT_POLICIES` or an ``(obs, rng)``
callable as :class:`~quant_arena.envs.arena_env.ArenaSingleAgentEnv` takes them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.envs.arena_env import ArenaEnv
from quant_arena.envs.config import ArenaEnvConfig
from quant_arena.sim import MarketData

__all__ = [
    "bradley_terry",
    "league_table",
    "match_windows",
    "pairwise_results",
    "run_match",
    "run_matches",
]

#: Elo points per natural-log unit of Bradley-Terry strength (400 / ln 10).
ELO_SCALE = 400.0 / math.log(10.0)


def run_match(
    players: Mapping[str, Any],
    data: MarketData | pd.DataFrame,
    window: tuple[int, int],
    config: ArenaEnvConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One match of ``players`` (name -> policy) over bars ``[start, end)`` of ``data``.

    Every player starts flat with the same equity on bar ``start`` and trades until ``end - 1``
    (or until it is terminated: its equity is then frozen). ``seed`` drives the ``"random"``
    policy only. Returns one row per player: ``log_return``, ``relative_return`` (zero-sum over
    the players), ``final_equity``, ``terminated``.
    """
    if len(players) < 2:
        raise ValueError(f"run_match needs at least 2 players, got {list(players)}")
    start, end = int(window[0]), int(window[1])
    if end - start < 2:
        raise ValueError(f"run_match: window {window} must hold at least 2 bars")
    names = list(players)
    base = ArenaEnvConfig.make(config).model_dump()
    base.update(
        agent_ids=tuple(names),
        n_agents=len(names),
        start="fixed",
        start_index=start,
        max_episode_steps=end - 1 - start,
        max_drawdown=None,
    )
    arena = ArenaEnv(data, ArenaEnvConfig.model_validate(base))
    if end > len(arena.data):
        raise ValueError(
            f"run_match: window {window} ends after the data's {len(arena.data)} bars"
        )
    policies = {n: arena.policy(p) for n, p in players.items()}
    rng = np.random.default_rng(seed)
    obs, _ = arena.reset(seed=int(seed), options={"start": start})
    eq0 = arena.cfg.initial_equity
    total = dict.fromkeys(names, 0.0)
    terminated = dict.fromkeys(names, False)
    while arena.agents:
        actions = {a: policies[a](obs[a], rng) for a in arena.agents}
        obs, _, terms, _, infos = arena.step(actions)
        for a, info in infos.items():
            total[a] = math.log(max(info["equity"], 1e-12) / eq0)
            terminated[a] = terminated[a] or bool(terms[a])
    mean = sum(total.values()) / len(total)
    return pd.DataFrame(
        {
            "player": names,
            "log_return": [total[n] for n in names],
            "relative_return": [total[n] - mean for n in names],
            "final_equity": [eq0 * math.exp(total[n]) for n in names],
            "terminated": [terminated[n] for n in names],
        }
    )


def match_windows(
    window: tuple[int, int], n: int, length: int | None, seed: int = 0
) -> list[tuple[int, int]]:
    """``n`` sub-windows of ``length`` bars of ``window`` with seeded random start offsets (the
    whole window ``n`` times when ``length`` is None or covers it)."""
    start, end = int(window[0]), int(window[1])
    if length is None or length >= end - start:
        return [(start, end)] * int(n)
    if length < 2:
        raise ValueError(f"match length {length} must be >= 2 bars")
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, end - start - length + 1, size=int(n))
    return [(start + int(o), start + int(o) + int(length)) for o in offsets]


def run_matches(
    players: Mapping[str, Any],
    data: MarketData | pd.DataFrame,
    window: tuple[int, int],
    config: ArenaEnvConfig | Mapping[str, Any] | None = None,
    n_matches: int = 8,
    length: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``n_matches`` matches (:func:`run_match`) on sub-windows of ``window`` (:func:`match_windows`);
    one row per match x player with ``match``, ``start`` and ``end``."""
    rows = []
    for k, (s, e) in enumerate(match_windows(window, n_matches, length, seed)):
        res = run_match(players, data, (s, e), config, seed=int(seed) * 10_007 + k)
        res.insert(0, "end", e)
        res.insert(0, "start", s)
        res.insert(0, "match", k)
        rows.append(res)
    return pd.concat(rows, ignore_index=True)


def _outcomes(
    matches: pd.DataFrame, tol: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(players, per match the score matrix S[m, i, j] = 1 win / 0.5 draw / 0 loss of i vs j,
    and the played mask)."""
    players = list(dict.fromkeys(matches["player"]))
    idx = {p: i for i, p in enumerate(players)}
    ids = sorted(matches["match"].unique())
    k = len(players)
    score = np.zeros((len(ids), k, k))
    played = np.zeros((len(ids), k, k), dtype=bool)
    for m, (_, g) in enumerate(matches.groupby("match", sort=True)):
        r = np.full(k, np.nan)
        r[[idx[p] for p in g["player"]]] = g["log_return"].to_numpy(dtype=float)
        diff = r[:, None] - r[None, :]
        ok = ~np.isnan(diff) & ~np.eye(k, dtype=bool)
        score[m] = np.where(diff > tol, 1.0, np.where(diff < -tol, 0.0, 0.5)) * ok
        played[m] = ok
    return players, score, played


def pairwise_results(matches: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Wins / draws / losses of every player against every other over ``matches`` (rows of
    :func:`run_matches`); a draw is a log-return difference within ``tol``."""
    players, score, played = _outcomes(matches, tol)
    rows = []
    for i, p in enumerate(players):
        for j, q in enumerate(players):
            if i == j:
                continue
            s, pl = score[:, i, j], played[:, i, j]
            rows.append(
                {
                    "player": p,
                    "opponent": q,
                    "wins": int(((s == 1.0) & pl).sum()),
                    "draws": int(((s == 0.5) & pl).sum()),
                    "losses": int(((s == 0.0) & pl).sum()),
                }
            )
    return pd.DataFrame(rows, columns=["player", "opponent", "wins", "draws", "losses"])


def bradley_terry(
    wins: np.ndarray,
    games: np.ndarray,
    prior: float = 0.5,
    iterations: int = 500,
    tol: float = 1e-10,
) -> np.ndarray:
    """Bradley-Terry ratings (Elo points, mean 0) from ``wins[i, j]`` (i's score against j, a draw
    counting half) and ``games[i, j]``; ``prior`` virtual games at 50% against every other player
    keep unbeaten or winless players finite (MM algorithm of Hunter, 2004)."""
    w = np.asarray(wins, dtype=float) + prior * 0.5 * (1 - np.eye(len(wins)))
    n = np.asarray(games, dtype=float) + prior * (1 - np.eye(len(wins)))
    p = np.ones(len(w))
    total = w.sum(axis=1)
    for _ in range(int(iterations)):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        new = total / np.where(denom > 0, denom, 1.0)
        new = new / np.exp(np.mean(np.log(new)))
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    logp = np.log(p)
    return ELO_SCALE * (logp - logp.mean())


def league_table(
    matches: pd.DataFrame,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    tol: float = 1e-9,
    prior: float = 0.5,
) -> pd.DataFrame:
    """The league table of ``matches`` (rows of :func:`run_matches`, one or more folds/seeds: a
    ``match`` id must be unique per match): per player its Bradley-Terry rating (Elo points),
    the rating's bootstrap std and ``1 - alpha`` CI (matches resampled with replacement),
    wins / draws / losses over all pairings and the mean relative return. Sorted by rating."""
    players, score, played = _outcomes(matches, tol)
    g = played.astype(float)
    rating = bradley_terry(score.sum(axis=0), g.sum(axis=0), prior)
    rng = np.random.default_rng(seed)
    m = score.shape[0]
    boot = np.empty((int(n_bootstrap), len(players)))
    for b in range(int(n_bootstrap)):
        pick = rng.integers(0, m, size=m)
        boot[b] = bradley_terry(score[pick].sum(axis=0), g[pick].sum(axis=0), prior)
    pw = (
        pairwise_results(matches, tol)
        .groupby("player")[["wins", "draws", "losses"]]
        .sum()
    )
    rel = matches.groupby("player")["relative_return"].agg(["mean", "std"])
    out = pd.DataFrame(
        {
            "player": players,
            "rating": rating,
            "rating_std": boot.std(axis=0, ddof=1) if n_bootstrap > 1 else np.nan,
            "rating_lo": np.quantile(boot, alpha / 2, axis=0),
            "rating_hi": np.quantile(boot, 1 - alpha / 2, axis=0),
            "wins": [int(pw.loc[p, "wins"]) for p in players],
            "draws": [int(pw.loc[p, "draws"]) for p in players],
            "losses": [int(pw.loc[p, "losses"]) for p in players],
            "mean_relative_return": [float(rel.loc[p, "mean"]) for p in players],
            "relative_return_std": [float(rel.loc[p, "std"]) for p in players],
            "n_matches": [
                int(played[:, i].any(axis=1).sum()) for i in range(len(players))
            ],
        }
    )
    return out.sort_values("rating", ascending=False, kind="stable").reset_index(
        drop=True
    )
