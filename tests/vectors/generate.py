"""
Generate the committed test vectors in tests/vectors/*.json and the STF scenario
vectors in tests/vectors/stf/*.json (see tests/vectors/stf_scenarios.py).

    python -m tests.vectors.generate          # rewrite the files
    python -m tests.vectors.generate --check  # exit 1 if a file would change

Everything is deterministic (seeded generators, RFC 6979 signatures), so the files
change only when the protocol does; tests/vectors/test_vectors.py checks both that
the implementation reproduces every committed value and that regenerating gives
byte-identical files. The Solidity side loads the same files.
"""

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.protocol.batch import (
    TX_TREE_DEPTH,
    Batch,
    encode_batch,
    transaction_leaf,
    transaction_proof,
)
from node.protocol.crypto import SECP256K1N, address_of, keccak256, sign_digest
from node.protocol.eip712 import domain_separator, encode_type, type_hash
from node.protocol.encoding import decode_rlp_list, encode_items
from node.protocol.merkle import ZERO_HASHES
from node.protocol.state import LAYOUT, State
from node.protocol.transactions import (
    ALL_MARKETS,
    MESSAGE_TYPES,
    TRANSACTION_TYPES,
    Cancel,
    Message,
    Order,
    SignedTransaction,
    TxKind,
    Withdraw,
    encode_transaction,
    message_to_json,
)
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import WitnessRecorder, decode_witness
from tests.stf_env import DOMAIN, test_key
from tests.vectors.stf_scenarios import stf_vectors

VECTOR_DIR = Path(__file__).parent

STF_DIR = VECTOR_DIR / "stf"
"""The STF scenario vectors: one file per scenario, owned by this generator (a file
there that no scenario produces is stale, and removed when the files are written)."""


def hx(data: bytes) -> str:
    """0x-hex of bytes."""
    return "0x" + data.hex()


def random_message(rng: random.Random, cls: type[Message]) -> Message:
    """A message of type ``cls`` with members drawn to hit edges (0, max) often."""
    values: list[Any] = []
    for spec in cls.FIELDS:
        if spec.type.startswith("uint"):
            bits = int(spec.type[4:])
            choice = rng.random()
            if choice < 0.15:
                values.append(0)
            elif choice < 0.3:
                values.append((1 << bits) - 1)
            elif choice < 0.6:
                values.append(rng.randrange(1 << min(bits, 16)))
            else:
                values.append(rng.randrange(1 << bits))
        elif spec.type == "bool":
            values.append(rng.random() < 0.5)
        elif spec.type == "address":
            values.append(rng.randbytes(20))
        else:
            values.append(rng.randbytes(32))
    if cls.TYPE_NAME == "CancelAll" and rng.random() < 0.3:
        values[1] = ALL_MARKETS
    return cls(*values)


def transaction_vectors() -> dict[str, Any]:
    """Messages of every type: JSON form, hashes, signatures, encodings."""
    rng = random.Random(20261121)
    cases = []
    for cls in MESSAGE_TYPES.values():
        for n in range(8):
            message = random_message(rng, cls)
            key = test_key(n)
            digest = message.signing_hash(DOMAIN)
            signature = sign_digest(key, digest)
            case: dict[str, Any] = {
                "type": cls.TYPE_NAME,
                "message": message_to_json(message),
                "structHash": hx(message.struct_hash()),
                "digest": hx(digest),
                "privateKey": hx(key),
                "signer": hx(address_of(key)),
                "signature": hx(signature),
            }
            if cls in TRANSACTION_TYPES.values():
                case["encoded"] = hx(encode_transaction(SignedTransaction(message, signature)))
                case["txHash"] = hx(digest)
            cases.append(case)
    return {
        "description": "EIP-712 messages of every type: digests, signatures, wire encodings",
        "domain": DOMAIN.to_json(),
        "domainSeparator": hx(domain_separator(DOMAIN)),
        "types": {
            name: {
                "encodeType": encode_type(name, cls.FIELDS),
                "typeHash": hx(type_hash(name, cls.FIELDS)),
            }
            for name, cls in MESSAGE_TYPES.items()
        },
        "kinds": {kind.name: int(kind) for kind in TxKind},
        "cases": cases,
    }


def _rlp_string(payload: bytes) -> bytes:
    """The RLP encoding of one byte string."""
    return encode_items(payload)  # type: ignore[arg-type]


def _rlp_list(encoded_items: list[bytes]) -> bytes:
    """A list encoding over already-encoded items (canonical prefix)."""
    body = b"".join(encoded_items)
    if len(body) < 56:
        return bytes([0xC0 + len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(size)]) + size + body


def _signed(message: Message, key_number: int) -> bytes:
    key = test_key(key_number)
    return encode_transaction(
        SignedTransaction(message, sign_digest(key, message.signing_hash(DOMAIN)))
    )


def invalid_transaction_vectors() -> dict[str, Any]:
    """Encodings every decoder must reject, each with the error class it raises."""
    valid = _signed(Order(7, 1, True, 250_000, 1_000, 0, False, 0, 42), 0)
    kind = valid[:1]
    items = decode_rlp_list(valid[1:])
    enc = [_rlp_string(item) for item in items]
    body = b"".join(enc)
    signature = items[-1]
    r, s = signature[:32], int.from_bytes(signature[32:64], "big")

    def with_item(i: int, encoded_item: bytes) -> bytes:
        return kind + _rlp_list([*enc[:i], encoded_item, *enc[i + 1 :]])

    def with_signature(sig: bytes) -> bytes:
        return with_item(len(enc) - 1, _rlp_string(sig))

    malleated = r + (SECP256K1N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    cases: list[tuple[str, bytes, str]] = [
        ("empty input", b"", "MalformedEncodingError"),
        ("kind byte only", kind, "MalformedEncodingError"),
        ("unknown kind 0", b"\x00" + valid[1:], "UnknownTransactionKindError"),
        ("unknown kind 8", b"\x08" + valid[1:], "UnknownTransactionKindError"),
        ("unknown kind 0xff", b"\xff" + valid[1:], "UnknownTransactionKindError"),
        ("trailing byte", valid + b"\x00", "MalformedEncodingError"),
        ("truncated", valid[:-1], "MalformedEncodingError"),
        ("payload is a string, not a list", kind + _rlp_string(b"abc"), "MalformedEncodingError"),
        ("one item missing", kind + _rlp_list(enc[:-2] + enc[-1:]), "MalformedEncodingError"),
        ("one item too many", kind + _rlp_list([*enc, b"\x80"]), "MalformedEncodingError"),
        ("nested list as member", with_item(0, b"\xc0"), "MalformedEncodingError"),
        ("uint64 with leading zero", with_item(0, b"\x82\x00\x07"), "NonCanonicalEncodingError"),
        ("zero encoded as 0x00", with_item(0, b"\x00"), "NonCanonicalEncodingError"),
        ("single byte as short string", with_item(0, b"\x81\x07"), "NonCanonicalEncodingError"),
        (
            "long string form for a short string",
            with_item(0, b"\xb8\x01\x07"),
            "NonCanonicalEncodingError",
        ),
        (
            "long list form for a short list",
            kind + b"\xf8\x03\x01\x02\x03",
            "NonCanonicalEncodingError",
        ),
        (
            "list length with a leading zero byte",
            kind + b"\xf9\x00" + bytes([len(body)]) + body,
            "NonCanonicalEncodingError",
        ),
        (
            "uint64 of 9 bytes",
            with_item(0, _rlp_string(b"\x01" + 8 * b"\x00")),
            "ValueOutOfRangeError",
        ),
        (
            "uint32 of 5 bytes",
            with_item(1, _rlp_string(b"\x01" + 4 * b"\x00")),
            "ValueOutOfRangeError",
        ),
        ("uint8 of 2 bytes", with_item(5, _rlp_string(b"\x01\x00")), "ValueOutOfRangeError"),
        ("bool 2", with_item(2, b"\x02"), "ValueOutOfRangeError"),
        ("bool as 0x00", with_item(2, b"\x00"), "NonCanonicalEncodingError"),
        ("signature of 64 bytes", with_signature(signature[:64]), "InvalidSignatureError"),
        ("signature of 66 bytes", with_signature(signature + b"\x1b"), "InvalidSignatureError"),
        ("signature v = 0", with_signature(signature[:64] + b"\x00"), "InvalidSignatureError"),
        ("signature v = 29", with_signature(signature[:64] + b"\x1d"), "InvalidSignatureError"),
        (
            "signature with high s (malleated twin)",
            with_signature(malleated),
            "InvalidSignatureError",
        ),
        ("signature r = 0", with_signature(32 * b"\x00" + signature[32:]), "InvalidSignatureError"),
        (
            "signature s = 0",
            with_signature(r + 32 * b"\x00" + signature[64:]),
            "InvalidSignatureError",
        ),
        (
            "signature r = n",
            with_signature(SECP256K1N.to_bytes(32, "big") + signature[32:]),
            "InvalidSignatureError",
        ),
        (
            "longer than 256 bytes",
            kind + _rlp_list([*enc[:-1], _rlp_string(300 * b"\x01")]),
            "MalformedEncodingError",
        ),
    ]
    withdraw = _signed(Withdraw(1, b"\x22" * 20, 5, 1), 1)
    witems = [_rlp_string(x) for x in decode_rlp_list(withdraw[1:])]
    for label, bad in (
        ("address of 19 bytes", b"\x22" * 19),
        ("address of 21 bytes", b"\x22" * 21),
    ):
        cases.append(
            (
                label,
                withdraw[:1] + _rlp_list([witems[0], _rlp_string(bad), *witems[2:]]),
                "MalformedEncodingError",
            )
        )
    cancel = _signed(Cancel(1, b"\x33" * 32, 9), 2)
    citems = [_rlp_string(x) for x in decode_rlp_list(cancel[1:])]
    cases.append(
        (
            "bytes32 of 31 bytes",
            cancel[:1] + _rlp_list([citems[0], _rlp_string(b"\x33" * 31), *citems[2:]]),
            "MalformedEncodingError",
        )
    )
    return {
        "description": "encodings every transaction decoder must reject, with the error class",
        "cases": [
            {"name": name, "encoded": hx(data), "error": error} for name, data, error in cases
        ],
    }


def batch_vectors() -> dict[str, Any]:
    """Batches with their encodings, headers, transaction roots and inclusion proofs."""
    rng = random.Random(7)
    tx_cases = transaction_vectors()["cases"]
    encoded_txs = [bytes.fromhex(c["encoded"][2:]) for c in tx_cases if "encoded" in c]
    out = []
    for n, count in enumerate((0, 1, 2, 3, 17)):
        txs = tuple(rng.choice(encoded_txs) for _ in range(count))
        if count == 17:  # a batch may carry bytes that are not a transaction: a no-op step
            txs = (*txs[:-1], b"\x01\x02\x03")
        batch = Batch(
            index=n,
            parent_root=keccak256(b"parent" + bytes([n])),
            timestamp=1_790_000_000 + n,
            inbox_start=3 * n,
            inbox_end=3 * n + n % 3,
            post_root=keccak256(b"post" + bytes([n])),
            transactions=txs,
        )
        header = batch.header()
        out.append(
            {
                "index": batch.index,
                "parentRoot": hx(batch.parent_root),
                "timestamp": batch.timestamp,
                "inboxStart": batch.inbox_start,
                "inboxEnd": batch.inbox_end,
                "postRoot": hx(batch.post_root),
                "transactions": [hx(tx) for tx in txs],
                "txLeaves": [hx(transaction_leaf(tx)) for tx in txs],
                "txCount": header.tx_count,
                "txRoot": hx(header.tx_root),
                "headerHash": hx(header.hash()),
                "encoded": hx(encode_batch(batch)),
                "txProofs": [[hx(s) for s in transaction_proof(txs, i)] for i in range(len(txs))],
            }
        )
    return {
        "description": "batches: encoding, header hash, transaction root and proofs",
        "txTreeDepth": TX_TREE_DEPTH,
        "batches": out,
    }


def _random_writes(rng: random.Random, count: int) -> list[tuple[int, int, bytes]]:
    writes = []
    for _ in range(count):
        table = rng.choice(LAYOUT.tables)
        if rng.random() < 0.6:
            index = rng.randrange(64)  # dense ids: paths share nodes
        else:
            index = rng.randrange(1 << table.depth)
        record = b"" if rng.random() < 0.15 else rng.randbytes(rng.choice((1, 31, 32, 33, 64, 100)))
        writes.append((table.id, index, record))
    return writes


def state_vectors() -> dict[str, Any]:
    """Commits of record writes with the roots after each and proofs of written and absent keys."""
    rng = random.Random(99)
    state = State(MemoryNodeStore())
    commits = []
    for size in (1, 2, 5, 20, 3, 50):
        writes = _random_writes(rng, size)
        for table, index, record in writes:
            state.set(table, index, record)
        root = state.commit()
        probe = [(t, i) for t, i, _ in writes[:4]] + [(1, rng.randrange(1 << 32))]
        proofs = []
        for table, index in probe:
            proof = state.prove(table, index)
            proofs.append(
                {
                    "table": table,
                    "index": str(index),
                    "record": hx(proof.record),
                    "siblings": [hx(s) for s in proof.siblings],
                }
            )
        commits.append(
            {
                "writes": [{"table": t, "index": str(i), "record": hx(r)} for t, i, r in writes],
                "root": hx(root),
                "tableRoots": [hx(state.table_root(t.id)) for t in LAYOUT.tables],
                "proofs": proofs,
            }
        )
    return {
        "description": "Merkle state: writes, roots after each commit, proofs",
        "globalDepth": LAYOUT.global_depth,
        "tables": [{"id": t.id, "name": t.name, "depth": t.depth} for t in LAYOUT.tables],
        "zeroHashes": [hx(z) for z in ZERO_HASHES],
        "emptyRoot": hx(LAYOUT.empty_root),
        "commits": commits,
    }


def witness_vectors() -> dict[str, Any]:
    """Runs of reads and writes with their witnesses: the pre-state's table roots and the
    first-touch proofs, and the post-state root the executor must compute from them."""
    rng = random.Random(5)
    store = MemoryNodeStore()
    base = State(store)
    pre_writes = _random_writes(rng, 40)
    for table, index, record in pre_writes:
        base.set(table, index, record)
    pre_root = base.commit()
    runs = []
    for _ in range(4):
        recorder = WitnessRecorder(store, pre_root)
        operations = []
        for table, index, record in _random_writes(rng, 6):
            if rng.random() < 0.5:
                recorder.get(table, index)
                operations.append({"op": "get", "table": table, "index": str(index)})
            else:
                recorder.set(table, index, record)
                operations.append(
                    {"op": "set", "table": table, "index": str(index), "record": hx(record)}
                )
        witness = decode_witness(recorder.witness())
        runs.append(
            {
                "preRoot": hx(pre_root),
                "operations": operations,
                "tableRoots": [hx(r) for r in witness.table_roots],
                "proofs": [
                    {
                        "table": p.table,
                        "index": str(p.index),
                        "record": hx(p.record),
                        "siblings": [hx(s) for s in p.siblings],
                    }
                    for p in witness.proofs
                ],
                "postRoot": hx(recorder.root),
                "encoded": hx(recorder.witness()),
            }
        )
    return {
        "description": (
            "witnesses of read/write runs against a fixed pre-state: the table roots, then "
            "each touched key's pre-state record and table-level siblings in first-touch order"
        ),
        "preStateWrites": [
            {"table": t, "index": str(i), "record": hx(r)} for t, i, r in pre_writes
        ],
        "runs": runs,
    }


VECTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "transactions.json": transaction_vectors,
    "invalid_transactions.json": invalid_transaction_vectors,
    "batches.json": batch_vectors,
    "state.json": state_vectors,
    "witness.json": witness_vectors,
}
"""Every vector file and the function that generates it."""


def render(data: dict[str, Any]) -> str:
    """The exact text a vector file holds."""
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def stf_files() -> dict[str, str]:
    """The text of every STF scenario vector file, by name within :data:`STF_DIR`."""
    return {name: render(data) for name, data in stf_vectors().items()}


def sync_stf_vectors(check: bool) -> list[str]:
    """
    Write the STF scenario vectors (deleting files no scenario produces), or with
    ``check`` only compare them; returns the stale files, relative to VECTOR_DIR.
    """
    files = stf_files()
    present = {path.name for path in STF_DIR.glob("*.json")}
    stale = []
    if not check:
        STF_DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        path = STF_DIR / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(f"stf/{name}")
        else:
            path.write_text(text)
    for name in sorted(present - files.keys()):
        stale.append(f"stf/{name}")
        if not check:
            (STF_DIR / name).unlink()
    return stale if check else []


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) every vector file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if any file would change")
    args = parser.parse_args(argv)
    stale = []
    for name, generate in VECTORS.items():
        path = VECTOR_DIR / name
        text = render(generate())
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    stale.extend(sync_stf_vectors(args.check))
    if stale:
        print("stale vectors: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
