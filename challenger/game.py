"""
The watchtower's game logic, pure: what a challenger does next in a dispute game, given
the game's state, the L1 time and its own replayed trace (as op-challenger's solver is
tested with its alphabet trace).

The rules are the DisputeGame's (docs/l1.md, "The dispute game"). Positions ``0..steps``
name the states of a batch's trace (0: its parent root, ``steps``: its post root). The
range ``[lo, hi]`` always has an agreed root at ``lo`` and a disputed one at ``hi``. The
challenger keeps an invariant: it agrees with a root exactly when its own trace has the
same root there. So the root at ``lo`` is always the honest one and the root at ``hi``
never is; at one step (``hi = lo + 1``) executing step ``lo`` on L1 from the honest root
gives the honest root at ``hi``, which is not the disputed one: the challenger wins.

:func:`next_moves` returns the challenger's moves in one of its own games (another
watcher's game is its own business: no watcher duplicates a move):

- its turn (the defender bisected): **respond** ``agree = (its root at mid == midRoot)``;
- the defender's turn at one step: **prove** step ``lo`` (anyone may; the challenger need
  not wait for the defender to lose on time);
- the defender's turn otherwise, once the defender's clock has run out: **timeout**.

:func:`should_challenge` is when to open a game at all: the posted root differs from its
own, the window is open, and it has no game open on that batch yet. An honest batch is
never challenged.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from node.l1.dispute import Game, GameStatus, Party


class MoveKind(Enum):
    """A challenger's move."""

    RESPOND = "respond"
    PROVE = "proveStep"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Move:
    """One move in game ``game``: RESPOND with ``agree``; PROVE step ``step``."""

    kind: MoveKind
    game: int
    agree: bool = False
    step: int = 0


def mid(lo: int, hi: int) -> int:
    """The bisection point, as DisputeGame._mid computes it."""
    return (lo + hi) // 2


def next_moves(game: Game, me: str, trace: Callable[[int], bytes], now: int) -> list[Move]:
    """
    The moves of challenger ``me`` in ``game`` at L1 time ``now``; ``trace(k)`` is its own
    root after ``k`` steps of the disputed batch. Empty while it waits, and in games that
    are over or that another challenger opened.
    """
    if game.status != GameStatus.OPEN or game.challenger.lower() != me.lower():
        return []
    if game.turn == Party.CHALLENGER:
        agree = trace(mid(game.lo, game.hi)) == game.mid_root
        return [Move(MoveKind.RESPOND, game.id, agree=agree)]
    if game.hi - game.lo == 1:
        return [Move(MoveKind.PROVE, game.id, step=game.lo)]
    if now - game.last_move_at > game.defender_clock:
        return [Move(MoveKind.TIMEOUT, game.id)]
    return []


def should_challenge(
    posted_root: bytes, own_root: bytes, now: int, window_end: int, games_open: int
) -> bool:
    """Whether to open a game on a batch: its posted root is not the one the challenger's
    replay gives, its window is still open at ``now``, and the challenger has no game on
    it yet (``games_open`` of its own)."""
    return posted_root != own_root and now < window_end and games_open == 0


__all__ = [
    "Game",
    "GameStatus",
    "Move",
    "MoveKind",
    "Party",
    "mid",
    "next_moves",
    "should_challenge",
]
