"""
The Solidity executor's constants are the Python STF's: read from the sources
(contracts/src/executor/) and compared with node.protocol, so a change on one side
that forgets the other fails here, before any differential run.
"""

import ast
import operator
import re
from pathlib import Path

import pytest

from node.protocol import records
from node.protocol.step import Reason
from node.protocol.transactions import MAX_TRANSACTION_BYTES, TxKind

EXECUTOR = Path(__file__).resolve().parents[2] / "contracts" / "src" / "executor"


def solidity_constants(name: str) -> dict[str, str]:
    """``NAME -> expression`` of every ``constant`` declared in ``EXECUTOR/name``."""
    source = (EXECUTOR / name).read_text()
    pattern = r"\b(?:uint\d*|int\d*)\s+internal\s+constant\s+([A-Z_0-9]+)\s*=\s*([^;]+);"
    return dict(re.findall(pattern, source))


OPERATORS = {ast.LShift: operator.lshift, ast.Sub: operator.sub, ast.Add: operator.add}


def evaluate(expression: str) -> int:
    """The value of a constant made of integers, ``<<``, ``+``, ``-`` and ``type(int64).max``."""

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not a plain integer constant: {expression}")

    expression = expression.replace("type(int64).max", str((1 << 63) - 1))
    return value(ast.parse(expression.strip(), mode="eval").body)


def test_reasons_agree() -> None:
    solidity = {
        name: evaluate(value) for name, value in solidity_constants("LibReason.sol").items()
    }
    assert solidity == {reason.name: reason.value for reason in Reason}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FEE_ACCOUNT", records.FEE_ACCOUNT),
        ("EXCHANGE_SLOT", records.EXCHANGE_SLOT),
        ("MAX_OPEN_ORDERS", records.MAX_OPEN_ORDERS),
        ("MAX_POSITIONS", records.MAX_POSITIONS),
        ("NONCE_WINDOW", records.NONCE_WINDOW),
        ("MARKET_LIMIT", records.MARKET_LIMIT),
        ("ACCOUNT_LIMIT", records.ACCOUNT_LIMIT),
        ("ORDER_ID_MODULUS", records.ORDER_ID_MODULUS),
        ("MAX_POSITION_SIZE", records.MAX_POSITION_SIZE),
        ("NIL", records.NIL),
        ("BIDS", records.BIDS),
        ("ASKS", records.ASKS),
    ],
)
def test_record_constants_agree(name: str, expected: int) -> None:
    assert evaluate(solidity_constants("LibRecords.sol")[name]) == expected


def test_transaction_constants_agree() -> None:
    solidity = solidity_constants("LibTransaction.sol")
    assert evaluate(solidity["MAX_TRANSACTION_BYTES"]) == MAX_TRANSACTION_BYTES
    kinds = {kind.name: evaluate(solidity[kind.name]) for kind in TxKind if kind.name in solidity}
    assert kinds == {kind.name: kind.value for kind in TxKind}
