"""
The poster's pure parts: its persisted record, the fee replacement rule, and how L1
errors are read (revert data decoded, transient failures told from definite answers).
"""

import pytest
import requests
from eth_abi.abi import encode as abi_encode
from web3.exceptions import ContractCustomError, Web3RPCError

from node.l1.errors import decode_revert, is_transient, revert_data
from node.protocol.crypto import keccak256
from node.sequencer.post_state import PostState, PostStateError, PostStatus
from node.sequencer.sender import Fees, bump_fees, gas_limit


def test_post_state_round_trips_through_its_encoding() -> None:
    """Every field survives encode/decode, the empty defaults included."""
    fresh = PostState(7, PostStatus.POSTING, b"\x01" * 32)
    assert PostState.decode(fresh.encode()) == fresh
    full = PostState(
        index=2**64 - 1,
        status=PostStatus.FINAL,
        header_hash=b"\x02" * 32,
        nonce=12,
        max_fee=3 * 10**9,
        priority_fee=10**9,
        gas=250_000,
        attempts=(b"\x03" * 32, b"\x04" * 32),
        l1_tx_hash=b"\x04" * 32,
        l1_block=99,
        serial=5,
        posted_at=1_700_000_000,
    )
    assert PostState.decode(full.encode()) == full
    assert full.tx_hash == b"\x04" * 32
    assert fresh.tx_hash is None
    assert PostState(0, PostStatus.POSTING, b"\x01" * 32, attempts=(b"\x09" * 32,)).tx_hash == (
        b"\x09" * 32
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xc0",
        b"\x01\x02",
        PostState(0, PostStatus.POSTED, b"\x01" * 32).encode()[:-1],
        PostState(0, PostStatus.POSTED, b"\x01" * 32, l1_tx_hash=b"\x01").encode(),
    ],
)
def test_invalid_post_state_is_refused(raw: bytes) -> None:
    """Anything that is not an encoded PostState raises PostStateError."""
    with pytest.raises(PostStateError):
        PostState.decode(raw)


def test_invalid_post_state_status_is_refused() -> None:
    """An unknown status name is corruption, not a new state."""
    raw = PostState(0, PostStatus.POSTED, b"\x01" * 32).encode().replace(b"posted", b"postex")
    with pytest.raises(PostStateError, match="corrupt"):
        PostState.decode(raw)


def test_bump_fees_raises_both_fees_by_an_eighth_at_least() -> None:
    """A replacement pays ceil(9/8) of each old fee (one wei more at the very least), or
    the market's if higher; past the cap there is no replacement."""
    old = Fees(max_fee=1_000, priority_fee=100)
    assert bump_fees(old, Fees(0, 0)) == Fees(1_125, 113)
    assert bump_fees(old, Fees(5_000, 50)) == Fees(5_000, 113)
    assert bump_fees(Fees(1, 0), Fees(0, 0)) == Fees(2, 1)
    assert bump_fees(old, Fees(0, 0), cap=1_125) == Fees(1_125, 113)
    assert bump_fees(old, Fees(0, 0), cap=1_124) is None
    assert gas_limit(100_000) == 125_000


def error(signature: str, types: list[str], args: list[object]) -> bytes:
    return keccak256(signature.encode())[:4] + abi_encode(types, args)


def test_decode_revert_names_rollup_errors_and_their_arguments() -> None:
    """Custom errors of the committed artifacts, and Solidity's own, decode by name."""
    data = error(
        "WrongParentRoot(bytes32,bytes32)", ["bytes32", "bytes32"], [b"\x01" * 32, b"\x02" * 32]
    )
    reason = decode_revert(data)
    assert reason.name == "WrongParentRoot"
    assert reason.arg("expected") == b"\x01" * 32 and reason.arg("parentRoot") == b"\x02" * 32
    assert str(reason) == f"WrongParentRoot(expected=0x{'01' * 32}, parentRoot=0x{'02' * 32})"
    assert str(decode_revert(error("Error(string)", ["string"], ["no"]))) == "Error(message='no')"
    assert decode_revert(error("Panic(uint256)", ["uint256"], [0x11])).arg("code") == 0x11
    assert decode_revert(b"").name == "EmptyRevert"
    unknown = decode_revert(b"\xde\xad\xbe\xef")
    assert unknown.name == "Unknown" and unknown.arg("data") == b"\xde\xad\xbe\xef"
    truncated = error("WrongIndex(uint64,uint64)", ["uint64", "uint64"], [1, 2])[:-1]
    assert decode_revert(truncated).name == "Unknown"


def test_revert_data_reads_web3_reverts_only() -> None:
    """The raw data of a web3 revert; None for anything that is not a revert."""
    assert revert_data(ContractCustomError("0xdeadbeef", data="0xdeadbeef")) == b"\xde\xad\xbe\xef"
    assert revert_data(ContractCustomError("x", data={"data": "0x01"})) == b"\x01"
    assert revert_data(ValueError("x")) is None


def rpc_error(code: int, message: str) -> Web3RPCError:
    response = {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    return Web3RPCError(message, rpc_response=response)  # type: ignore[arg-type]


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status}", response=response)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (requests.ConnectionError("refused"), True),
        (requests.ReadTimeout("slow"), True),
        (ConnectionResetError(), True),
        (http_error(503), True),
        (http_error(429), True),
        (http_error(401), False),
        (rpc_error(-32005, "limit exceeded"), True),
        (rpc_error(-32000, "header not found"), True),
        (rpc_error(-32000, "nonce too low"), False),
        (rpc_error(-32000, "insufficient funds for gas * price + value"), False),
        (ContractCustomError("0x", data="0x"), False),
        (requests.exceptions.InvalidURL("nope"), False),
        (ValueError("bad"), False),
    ],
)
def test_is_transient_tells_later_from_no(exc: BaseException, transient: bool) -> None:
    """Outages, overload and timeouts are worth retrying; definite answers are not."""
    assert is_transient(exc) is transient
