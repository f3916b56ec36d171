"""
Hashing and secp256k1 signatures.

keccak-256 comes from ``safe-pysha3`` (a C implementation, several times faster
than pycryptodome's for the 64-byte inputs of Merkle nodes); signing and public-key
recovery from coincurve (libsecp256k1), called directly on the hot path: eth-keys'
coincurve backend makes the same two calls behind objects that cost as much again.
"""

import functools
from typing import Final

from coincurve import PrivateKey as CoincurvePrivateKey
from coincurve import PublicKey
from eth_keys.backends.coincurve import CoinCurveECCBackend
from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import PrivateKey
from sha3 import keccak_256

from .errors import InvalidSignatureError

SECP256K1N: Final[int] = SECPK1_N
"""Order of the secp256k1 group (0xFFFF...FFFE BAAEDCE6 AF48A03B BFD25E8C D0364141)."""

SECP256K1N_HALF: Final = SECP256K1N // 2
"""Largest ``s`` a canonical (EIP-2 "low s") signature may carry."""

SIGNATURE_LENGTH: Final = 65
"""A signature travels as ``r (32) || s (32) || v (1)`` with ``v`` in {27, 28}."""

_BACKEND: Final = CoinCurveECCBackend()


def keccak256(data: bytes) -> bytes:
    """The keccak-256 digest of ``data`` (Ethereum's hash, not NIST SHA3-256)."""
    return keccak_256(data).digest()  # type: ignore[no-any-return]


def check_signature(signature: bytes) -> None:
    """
    Raise :class:`InvalidSignatureError` unless ``signature`` is canonical.

    Canonical means: 65 bytes; ``v`` is 27 or 28; ``1 <= r < n``; ``1 <= s <= n/2``.
    The low-``s`` rule (EIP-2) removes the malleated twin ``(r, n - s, v ^ 1)``, so
    every encoded transaction has exactly one valid signature byte string per
    ECDSA nonce. The Solidity side applies the same rule before ``ecrecover``.
    """
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidSignatureError(
            f"signature must be {SIGNATURE_LENGTH} bytes, got {len(signature)}"
        )
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignatureError(f"signature v must be 27 or 28, got {v}")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 1 <= r < SECP256K1N:
        raise InvalidSignatureError("signature r out of range")
    if not 1 <= s <= SECP256K1N_HALF:
        raise InvalidSignatureError("signature s out of range (must be low-s, EIP-2)")


def recover_signer(digest: bytes, signature: bytes) -> bytes:
    """
    The 20-byte address whose key produced ``signature`` over the 32-byte ``digest``.

    Raises :class:`InvalidSignatureError` for a non-canonical signature or one from
    which no public key can be recovered.
    """
    check_signature(signature)
    try:
        public_key = PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError (or its own errors)
        raise InvalidSignatureError(f"no public key recovers from this signature: {exc}") from exc
    return keccak256(public_key.format(compressed=False)[1:])[12:]


@functools.lru_cache(maxsize=64)
def _signing_key(private_key: bytes) -> CoincurvePrivateKey:
    """A key's libsecp256k1 context, made once (deriving it costs as much as a signature)."""
    return CoincurvePrivateKey(private_key)


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """
    Sign ``digest`` with a 32-byte private key; returns ``r || s || v`` (v in {27, 28}).

    RFC 6979 deterministic nonces; libsecp256k1 always produces low ``s``. Used by
    the sequencer (receipts), the oracle feeder, tests and tools; traders sign
    with any EIP-712 wallet instead.
    """
    if len(digest) != 32:
        raise ValueError("a digest is 32 bytes")
    signature = _signing_key(private_key).sign_recoverable(digest, hasher=None)
    return signature[:64] + bytes((signature[64] + 27,))


def address_of(private_key: bytes) -> bytes:
    """The 20-byte address of a 32-byte private key."""
    return keccak256(PrivateKey(private_key, backend=_BACKEND).public_key.to_bytes())[12:]
