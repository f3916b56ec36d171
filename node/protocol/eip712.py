"""
EIP-712 typed structured data hashing, for the flat struct types Ratchet signs.

Every Ratchet message is a flat struct of ``uint8``/``uint32``/``uint64``,
``bool``, ``address`` and ``bytes32`` members, so ``encodeData`` is one 32-byte
word per member and the digest is

    keccak256(0x19 0x01 || domainSeparator || keccak256(typeHash || word_1 || ... || word_n))

exactly as ``eth_signTypedData_v4`` computes it. The tests check every digest
against eth-account's independent implementation.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final

from .crypto import keccak256

DOMAIN_NAME: Final = "Ratchet"
"""The ``name`` of Ratchet's EIP-712 domain."""

DOMAIN_VERSION: Final = "1"
"""The ``version`` of Ratchet's EIP-712 domain."""

UINT_BITS: Final = {"uint8": 8, "uint32": 32, "uint64": 64, "uint256": 256}
"""Width of every unsigned integer type a Ratchet message may use."""

SUPPORTED_TYPES: Final = frozenset(UINT_BITS) | {"bool", "address", "bytes32"}
"""The member types of Ratchet's flat structs."""


@dataclass(frozen=True)
class FieldSpec:
    """One member of a struct type."""

    name: str
    """The EIP-712 member name (camelCase, as wallets show it)."""

    attr: str
    """The attribute of the Python dataclass holding it."""

    type: str
    """The Solidity type of the member."""


@dataclass(frozen=True)
class Domain:
    """Ratchet's EIP-712 domain: binds signatures to one L2 chain and one L1 rollup."""

    chain_id: int
    """The L2 chain id."""

    verifying_contract: bytes
    """The 20-byte address of the L1 rollup contract."""

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 <= self.chain_id < 1 << 256:
            raise ValueError("chain id must be a uint256")
        if type(self.verifying_contract) is not bytes or len(self.verifying_contract) != 20:
            raise ValueError("verifying contract must be a 20-byte address")

    def to_json(self) -> dict[str, Any]:
        """The ``domain`` object of an ``eth_signTypedData_v4`` request."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": "0x" + self.verifying_contract.hex(),
        }


DOMAIN_FIELDS: Final = (
    FieldSpec("name", "name", "string"),
    FieldSpec("version", "version", "string"),
    FieldSpec("chainId", "chain_id", "uint256"),
    FieldSpec("verifyingContract", "verifying_contract", "address"),
)
"""The members of ``EIP712Domain`` Ratchet uses, in order."""


def encode_type(type_name: str, fields: Sequence[FieldSpec]) -> str:
    """``encodeType``: e.g. ``Cancel(uint64 account,bytes32 orderHash,uint64 nonce)``."""
    return type_name + "(" + ",".join(f"{f.type} {f.name}" for f in fields) + ")"


@cache
def type_hash(type_name: str, fields: tuple[FieldSpec, ...]) -> bytes:
    """``typeHash``: keccak256 of :func:`encode_type`."""
    return keccak256(encode_type(type_name, fields).encode())


def encode_word(abi_type: str, value: object) -> bytes:
    """``encodeData`` of one atomic member: a 32-byte word."""
    if abi_type in UINT_BITS and type(value) is int and 0 <= value < 1 << UINT_BITS[abi_type]:
        return value.to_bytes(32, "big")
    if abi_type == "bool" and type(value) is bool:
        return 31 * b"\x00" + (b"\x01" if value else b"\x00")
    if abi_type == "address" and type(value) is bytes and len(value) == 20:
        return 12 * b"\x00" + value
    if abi_type == "bytes32" and type(value) is bytes and len(value) == 32:
        return value
    raise ValueError(f"{value!r} is not a valid EIP-712 {abi_type}")


def hash_struct(type_name: str, fields: tuple[FieldSpec, ...], values: Sequence[object]) -> bytes:
    """``hashStruct`` of a flat struct whose member values are given in field order."""
    words = b"".join(encode_word(f.type, v) for f, v in zip(fields, values, strict=True))
    return keccak256(type_hash(type_name, fields) + words)


@lru_cache(maxsize=64)
def domain_separator(domain: Domain) -> bytes:
    """``hashStruct(EIP712Domain)`` of Ratchet's domain."""
    return keccak256(
        type_hash("EIP712Domain", DOMAIN_FIELDS)
        + keccak256(DOMAIN_NAME.encode())
        + keccak256(DOMAIN_VERSION.encode())
        + domain.chain_id.to_bytes(32, "big")
        + 12 * b"\x00"
        + domain.verifying_contract
    )


def typed_data_digest(domain: Domain, struct_hash: bytes) -> bytes:
    """The digest a wallet signs: ``keccak256(0x1901 || domainSeparator || structHash)``."""
    return keccak256(b"\x19\x01" + domain_separator(domain) + struct_hash)


def types_json(type_name: str, fields: Sequence[FieldSpec]) -> list[dict[str, str]]:
    """The ``types[type_name]`` entry of an ``eth_signTypedData_v4`` request."""
    return [{"name": f.name, "type": f.type} for f in fields]


EIP712_DOMAIN_TYPE: Final = types_json("EIP712Domain", DOMAIN_FIELDS)
"""The ``types.EIP712Domain`` entry every Ratchet typed-data request carries."""
