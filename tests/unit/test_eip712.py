"""EIP-712 digests equal eth-account's, the independent oracle, for every message type."""

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol.crypto import keccak256, recover_signer
from node.protocol.eip712 import Domain, encode_word
from node.protocol.transactions import (
    MESSAGE_TYPES,
    TRANSACTION_TYPES,
    Message,
    Order,
    SignedTransaction,
    decode_transaction,
    eip712_types,
    encode_transaction,
    typed_data,
)
from tests.strategies import domains, messages, private_keys
from tests.vectors.generate import random_message

MESSAGES_PER_TYPE = 60
"""Generated messages checked per type against eth-account (the issue asks for at least 50)."""


def oracle_digest(domain: Domain, message: Message) -> bytes:
    """eth-account's digest of the typed data we would hand a wallet."""
    signable = encode_typed_data(full_message=typed_data(domain, message))
    return keccak256(b"\x19" + signable.version + signable.header + signable.body)


@pytest.mark.parametrize("type_name", sorted(MESSAGE_TYPES))
def test_digest_equals_eth_account_for_generated_messages(type_name: str) -> None:
    rng = random.Random(type_name)
    cls = MESSAGE_TYPES[type_name]
    checked = 0
    for _ in range(MESSAGES_PER_TYPE):
        domain = Domain(rng.randrange(1 << 64), rng.randbytes(20))
        message = random_message(rng, cls)
        assert message.signing_hash(domain) == oracle_digest(domain, message)
        checked += 1
    assert checked >= 50


@pytest.mark.parametrize("type_name", sorted(MESSAGE_TYPES))
@settings(max_examples=50, deadline=None)
@given(domain=domains, data=st.data())
def test_digest_equals_eth_account_hypothesis(
    type_name: str, domain: Domain, data: st.DataObject
) -> None:
    message = data.draw(messages(MESSAGE_TYPES[type_name]))
    assert message.signing_hash(domain) == oracle_digest(domain, message)


@pytest.mark.parametrize("cls", list(TRANSACTION_TYPES.values()), ids=lambda c: c.TYPE_NAME)
@settings(max_examples=20, deadline=None)
@given(data=domains, key=private_keys, seed=private_keys)
def test_wallet_signature_recovers_and_round_trips(
    cls: type[Message], data: Domain, key: bytes, seed: bytes
) -> None:
    """A signature made by eth-account's sign_typed_data is accepted as is."""
    message = random_message(random.Random(seed), cls)
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(data, message)), key)
    signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    account = Account.from_key(key)
    assert (
        "0x" + recover_signer(message.signing_hash(data), signature).hex()
        == account.address.lower()
    )
    tx = SignedTransaction(message, signature)
    assert decode_transaction(encode_transaction(tx)) == tx


def test_types_for_get_config_are_what_wallets_need() -> None:
    types = eip712_types()
    assert types["EIP712Domain"] == [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]
    assert types["Order"] == [
        {"name": "account", "type": "uint64"},
        {"name": "market", "type": "uint32"},
        {"name": "isBuy", "type": "bool"},
        {"name": "price", "type": "uint64"},
        {"name": "size", "type": "uint64"},
        {"name": "timeInForce", "type": "uint8"},
        {"name": "reduceOnly", "type": "bool"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
    ]
    assert types["Receipt"] == [
        {"name": "txHash", "type": "bytes32"},
        {"name": "batch", "type": "uint64"},
        {"name": "index", "type": "uint32"},
    ]
    assert set(types) == {
        "EIP712Domain",
        "Order",
        "Cancel",
        "CancelAll",
        "Transfer",
        "Withdraw",
        "Liquidate",
        "OraclePrice",
        "Receipt",
    }


def test_domain_binds_chain_and_contract() -> None:
    order = Order(1, 0, True, 100, 1, 0, False, 0, 1)
    base = Domain(10, b"\x01" * 20)
    assert order.signing_hash(base) != order.signing_hash(Domain(11, b"\x01" * 20))
    assert order.signing_hash(base) != order.signing_hash(Domain(10, b"\x02" * 20))


@pytest.mark.parametrize(
    ("abi_type", "value"),
    [
        ("uint8", 256),
        ("uint64", -1),
        ("uint64", True),
        ("bool", 1),
        ("address", b"\x00" * 19),
        ("bytes32", b"\x00" * 33),
        ("string", "x"),
    ],
)
def test_invalid_word_values_are_refused(abi_type: str, value: object) -> None:
    with pytest.raises(ValueError):
        encode_word(abi_type, value)


@pytest.mark.parametrize(
    ("chain_id", "contract"),
    [(-1, b"\x00" * 20), (1, b"\x00" * 19), (2**256, b"\x00" * 20), (1, "0x00")],
)
def test_invalid_domain_is_refused(chain_id: int, contract: bytes) -> None:
    with pytest.raises(ValueError):
        Domain(chain_id, contract)
