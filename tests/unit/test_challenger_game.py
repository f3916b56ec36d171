"""
challenger/game.py against a toy trace (as op-challenger tests its solver with the
alphabet trace): a referee with the DisputeGame's rules, a batch whose steps append
letters to a hash chain, defenders that lie in every way we could think of, and a
challenger that plays next_moves. It must win every game on a wrong root, and never open
one on a right root.
"""

import random
from collections.abc import Callable

import pytest

from challenger.game import (
    Game,
    GameStatus,
    Move,
    MoveKind,
    Party,
    mid,
    next_moves,
    should_challenge,
)
from node.protocol.crypto import keccak256

ME = "0x00000000000000000000000000000000000000c1"
PARENT = keccak256(b"parent")


def step(root: bytes, k: int) -> bytes:
    """The toy STF: step k appends letter k to the chain."""
    return keccak256(root + bytes([97 + k % 26]))


def honest_trace(steps: int) -> list[bytes]:
    roots = [PARENT]
    for k in range(steps):
        roots.append(step(roots[-1], k))
    return roots


class Referee:
    """The DisputeGame's rules over the toy STF (one game, the challenger is ME)."""

    def __init__(self, steps: int, posted_root: bytes, clock: int = 60) -> None:
        self.lo, self.hi = 0, steps
        self.lo_root, self.hi_root = PARENT, posted_root
        self.mid_root = b""
        self.turn = Party.DEFENDER
        self.status = GameStatus.OPEN
        self.last_move_at = 0
        self.defender_clock = clock

    def game(self) -> Game:
        return Game(
            id=0, challenger=ME, batch_index=0, status=self.status, turn=self.turn, serial=1,
            lo=self.lo, hi=self.hi, last_move_at=self.last_move_at,
            defender_clock=self.defender_clock, challenger_clock=60, mid_root=self.mid_root,
        )  # fmt: skip

    def bisect(self, root: bytes) -> None:
        assert self.status == GameStatus.OPEN and self.turn == Party.DEFENDER
        assert self.hi - self.lo >= 2
        self.mid_root, self.turn = root, Party.CHALLENGER

    def play(self, move: Move, now: int) -> None:
        assert self.status == GameStatus.OPEN
        if move.kind == MoveKind.RESPOND:
            assert self.turn == Party.CHALLENGER
            m = mid(self.lo, self.hi)
            if move.agree:
                self.lo, self.lo_root = m, self.mid_root
            else:
                self.hi, self.hi_root = m, self.mid_root
            self.turn = Party.DEFENDER
            self.last_move_at = now
        elif move.kind == MoveKind.PROVE:
            assert self.turn == Party.DEFENDER and self.hi - self.lo == 1 and move.step == self.lo
            won = step(self.lo_root, self.lo) == self.hi_root
            self.status = GameStatus.DEFENDER_WON if won else GameStatus.CHALLENGER_WON
        else:
            assert self.turn == Party.DEFENDER
            assert now - self.last_move_at > self.defender_clock
            self.status = GameStatus.CHALLENGER_WON


def play_game(
    steps: int, defender_root: Callable[[int, int, int], bytes], posted_root: bytes
) -> GameStatus:
    """Play to the end: the defender bisects with ``defender_root(lo, hi, mid)``."""
    referee = Referee(steps, posted_root)
    mine = honest_trace(steps)
    for now in range(1, 10_000):
        game = referee.game()
        if game.turn == Party.DEFENDER and game.hi - game.lo >= 2:
            referee.bisect(defender_root(game.lo, game.hi, mid(game.lo, game.hi)))
            continue
        for move in next_moves(game, ME, mine.__getitem__, now):
            referee.play(move, now)
        if referee.status != GameStatus.OPEN:
            return referee.status
    raise AssertionError("the game did not end")


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 64, 100, 1000])
def test_the_challenger_wins_against_every_lie(steps: int) -> None:
    rng = random.Random(steps)
    honest = honest_trace(steps)
    wrong_final = keccak256(b"a wrong post root")
    for diverge in sorted({1, steps, rng.randrange(1, steps + 1)}):
        lying = honest[:diverge] + [keccak256(b"lie %d" % k) for k in range(diverge, steps + 1)]
        strategies: dict[str, Callable[[int, int, int], bytes]] = {
            "consistent lie": lambda lo, hi, m: lying[m],  # noqa: B023 - used in this loop
            "honest mids, wrong end": lambda lo, hi, m: honest[m],
            "random roots": lambda lo, hi, m: rng.randbytes(32),
            "always the parent": lambda lo, hi, m: PARENT,
        }
        for name, strategy in strategies.items():
            posted = lying[steps] if name == "consistent lie" else wrong_final
            assert play_game(steps, strategy, posted) == GameStatus.CHALLENGER_WON, (name, diverge)


def test_an_honest_batch_is_never_challenged() -> None:
    root = honest_trace(10)[-1]
    assert not should_challenge(root, root, now=5, window_end=60, games_open=0)
    assert should_challenge(keccak256(b"x"), root, now=5, window_end=60, games_open=0)
    assert not should_challenge(keccak256(b"x"), root, now=60, window_end=60, games_open=0)
    assert not should_challenge(keccak256(b"x"), root, now=5, window_end=60, games_open=1)


def game(
    game_id: int,
    challenger: str,
    status: GameStatus,
    turn: Party,
    lo: int,
    hi: int,
    mid_root: bytes,
) -> Game:
    """A game on batch 0 whose last move was at t=100 with 60 s on both clocks."""
    return Game(game_id, challenger, 0, status, turn, 1, lo, hi, 100, 60, 60, mid_root)


def test_moves_only_in_its_own_open_games_and_times_out_a_late_defender() -> None:
    trace = honest_trace(8).__getitem__
    base = game(3, ME, GameStatus.OPEN, Party.DEFENDER, 0, 8, b"")
    assert next_moves(base, ME, trace, 160) == []  # 60 s elapsed: not yet out of time
    assert next_moves(base, ME, trace, 161) == [Move(MoveKind.TIMEOUT, 3)]
    other = game(3, "0x" + "ab" * 20, GameStatus.OPEN, Party.CHALLENGER, 0, 8, b"")
    assert next_moves(other, ME, trace, 161) == []
    over = game(3, ME, GameStatus.DEFENDER_WON, Party.CHALLENGER, 0, 8, b"")
    assert next_moves(over, ME.upper(), trace, 161) == []
    asked = game(3, ME.upper(), GameStatus.OPEN, Party.CHALLENGER, 2, 6, trace(4))
    assert next_moves(asked, ME, trace, 101) == [Move(MoveKind.RESPOND, 3, agree=True)]
