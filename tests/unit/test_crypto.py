"""keccak-256 and secp256k1 signatures: canonical checks and recovery."""

import pytest
from eth_account import Account
from eth_keys import keys  # type: ignore[attr-defined]
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol.crypto import (
    SECP256K1N,
    SECP256K1N_HALF,
    address_of,
    check_signature,
    keccak256,
    recover_signer,
    sign_digest,
)
from node.protocol.errors import InvalidSignatureError

private_keys = st.integers(1, SECP256K1N - 1).map(lambda k: k.to_bytes(32, "big"))
digests = st.binary(min_size=32, max_size=32)


def test_keccak256_known_values() -> None:
    assert (
        keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert (
        keccak256(b"abc").hex()
        == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )


def test_curve_order_is_secp256k1() -> None:
    assert SECP256K1N == 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert SECP256K1N_HALF * 2 + 1 == SECP256K1N


@settings(max_examples=60)
@given(private_keys, digests)
def test_sign_then_recover(key: bytes, digest: bytes) -> None:
    signature = sign_digest(key, digest)
    check_signature(signature)
    assert recover_signer(digest, signature) == address_of(key)
    assert "0x" + address_of(key).hex() == Account.from_key(key).address.lower()


@settings(max_examples=60)
@given(private_keys, digests)
def test_eth_keys_signatures_recover_to_the_same_address(key: bytes, digest: bytes) -> None:
    sig = keys.PrivateKey(key).sign_msg_hash(digest)
    raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])
    assert recover_signer(digest, raw) == address_of(key)


def test_invalid_signature_high_s_is_rejected() -> None:
    key, digest = b"\x07" * 32, b"\x09" * 32
    signature = sign_digest(key, digest)
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(InvalidSignatureError, match="low-s"):
        recover_signer(digest, twin)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"\x01" * 64,
        b"\x01" * 66,
        b"\x01" * 64 + b"\x00",
        b"\x01" * 64 + b"\x01",
        b"\x01" * 64 + b"\x1d",
        b"\x00" * 32 + b"\x01" * 32 + b"\x1b",
        b"\x01" * 32 + b"\x00" * 32 + b"\x1b",
        SECP256K1N.to_bytes(32, "big") + b"\x01" * 32 + b"\x1b",
    ],
)
def test_invalid_signature_shapes_are_rejected(signature: bytes) -> None:
    with pytest.raises(InvalidSignatureError):
        recover_signer(b"\x01" * 32, signature)


def test_invalid_signature_recovering_no_key_is_rejected() -> None:
    # About half of all r values are not the x coordinate of a curve point.
    for r in range(1, 200):
        signature = r.to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"
        try:
            recover_signer(b"\x01" * 32, signature)
        except InvalidSignatureError as exc:
            assert "no public key" in str(exc)
            return
    pytest.fail("no unrecoverable r below 200")
