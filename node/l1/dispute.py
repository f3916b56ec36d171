"""
A DisputeGame game as L1 holds it (IDisputeGame.Game), for the sequencer's defence and
the watchtower alike: pure data, decoded from the tuple ``DisputeGame.game(id)`` returns.
"""

from dataclasses import dataclass
from enum import IntEnum


class GameStatus(IntEnum):
    """IDisputeGame.GameStatus."""

    NONE = 0
    OPEN = 1
    DEFENDER_WON = 2
    CHALLENGER_WON = 3
    ABANDONED = 4


class Party(IntEnum):
    """IDisputeGame.Party: whose move it is."""

    DEFENDER = 0
    CHALLENGER = 1


@dataclass(frozen=True)
class Game:
    """One game. The range ``[lo, hi]`` has an agreed root at ``lo`` and a disputed one at
    ``hi`` (positions of the batch's trace, docs/l1.md)."""

    id: int
    challenger: str
    """Who opened it (0x address)."""
    batch_index: int
    status: GameStatus
    turn: Party
    serial: int
    """The serial of the disputed batch."""
    lo: int
    hi: int
    last_move_at: int
    """L1 time of the last move: the clock on turn runs from it."""
    defender_clock: int
    """Seconds the defender had left at ``last_move_at``."""
    challenger_clock: int
    """Seconds the challenger had left at ``last_move_at``."""
    mid_root: bytes = b""
    """The defender's root at ``(lo + hi) // 2``, pending the challenger's answer."""

    @classmethod
    def from_call(cls, game_id: int, fields: object) -> "Game":
        """From the tuple web3 returns for ``DisputeGame.game(game_id)``."""
        assert isinstance(fields, (tuple, list)) and len(fields) == 13
        challenger, batch, status, turn, serial, lo, hi, last, d_clock, c_clock = fields[:10]
        return cls(
            game_id,
            str(challenger),
            _int(batch),
            GameStatus(_int(status)),
            Party(_int(turn)),
            _int(serial),
            _int(lo),
            _int(hi),
            _int(last),
            _int(d_clock),
            _int(c_clock),
            bytes(fields[12]),
        )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from L1, got {value!r}")
    return value
