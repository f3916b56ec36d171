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

from node.protocol import accounts, book, margin, oracle, orders, records, transactions
from node.protocol.step import OrderEnd, Reason
from node.protocol.transactions import MAX_TRANSACTION_BYTES, TxKind

EXECUTOR = Path(__file__).resolve().parents[2] / "contracts" / "src" / "executor"


def solidity_constants(name: str) -> dict[str, str]:
    """``NAME -> expression`` of every ``constant`` declared in ``EXECUTOR/name``."""
    source = (EXECUTOR / name).read_text()
    pattern = r"\b(?:uint\d*|int\d*)\s+internal\s+constant\s+([A-Z_0-9]+)\s*=\s*([^;]+);"
    return dict(re.findall(pattern, source))


OPERATORS = {
    ast.LShift: operator.lshift,
    ast.Sub: operator.sub,
    ast.Add: operator.add,
    ast.Mult: operator.mul,
}
TYPE_MAX = re.compile(r"type\((u?)int(\d+)\)\.max")


def evaluate(expression: str) -> int:
    """The value of an integer expression of literals, ``<< + - *`` and ``type(uintN).max``
    or ``type(intN).max``."""

    def type_max(match: re.Match[str]) -> str:
        bits = int(match.group(2))
        return str((1 << bits) - 1 if match.group(1) else (1 << (bits - 1)) - 1)

    expression = TYPE_MAX.sub(type_max, expression)

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return int(OPERATORS[type(node.op)](value(node.left), value(node.right)))
        raise ValueError(f"not a plain integer constant: {expression}")

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


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("LibMargin.sol", "BPS", margin.BPS),
        ("LibMargin.sol", "FUNDING_SCALE", margin.FUNDING_SCALE),
        ("LibOracle.sol", "FUNDING_PERIOD", oracle.FUNDING_PERIOD),
        ("LibAccounts.sol", "MAX_DEPOSIT", accounts.MAX_DEPOSIT),
        ("LibOrders.sol", "MAX_MATCHES", orders.MAX_MATCHES),
        ("LibOrders.sol", "ALL_MARKETS", transactions.ALL_MARKETS),
        ("LibOrders.sol", "TICK_BITS", records.TICK_BITS),
        ("LibOrders.sol", "GTC", transactions.TimeInForce.GTC),
        ("LibOrders.sol", "IOC", transactions.TimeInForce.IOC),
        ("LibOrders.sol", "FOK", transactions.TimeInForce.FOK),
        ("LibOrders.sol", "POST_ONLY", transactions.TimeInForce.POST_ONLY),
        ("LibOrders.sol", "END_FILLED", OrderEnd.FILLED),
        ("LibOrders.sol", "END_NO_LIQUIDITY", OrderEnd.NO_LIQUIDITY),
        ("LibOrders.sol", "END_MATCH_LIMIT", OrderEnd.MATCH_LIMIT),
        ("LibOrders.sol", "END_TAKER_MARGIN", OrderEnd.TAKER_MARGIN),
        ("LibOrders.sol", "END_REDUCED", OrderEnd.REDUCED),
        ("LibOrders.sol", "FILL_DONE", orders.FillStatus.DONE),
        ("LibOrders.sol", "FILL_MAKER_MARGIN", orders.FillStatus.MAKER_MARGIN),
        ("LibOrders.sol", "FILL_TAKER_MARGIN", orders.FillStatus.TAKER_MARGIN),
        ("LibBook.sol", "HEIGHTS", book.HEIGHTS),
    ],
)
def test_stf_constants_agree(source: str, name: str, expected: int) -> None:
    assert evaluate(solidity_constants(source)[name]) == expected
