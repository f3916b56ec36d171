"""
Signing-path throughput on one core: EIP-712 digest, signer recovery, decoding.

Prints one JSON object. The sequencer's target is 10,000 signed orders/s on two
cores, i.e. a budget of about 200 us of one core per order for everything;
these figures say how much of it admission alone takes.
"""

import random

from bench.common import emit, rate
from node.protocol.crypto import keccak256, recover_signer, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.transactions import (
    Order,
    SignedTransaction,
    decode_transaction,
    encode_transaction,
    message_from_json,
    message_to_json,
)


def main() -> None:
    rng = random.Random(1)
    domain = Domain(901337, rng.randbytes(20))
    key = keccak256(b"bench key")
    orders = [
        Order(
            rng.randrange(10_000),
            rng.randrange(4),
            rng.random() < 0.5,
            rng.randrange(1, 10**6) * 100,
            rng.randrange(1, 1000),
            0,
            False,
            0,
            n,
        )
        for n in range(1000)
    ]
    txs = [SignedTransaction(o, sign_digest(key, o.signing_hash(domain))) for o in orders]
    raws = [encode_transaction(tx) for tx in txs]
    digests = [o.signing_hash(domain) for o in orders]
    jsons = [message_to_json(o) for o in orders]
    i = iter(range(10**12))

    def pick() -> int:
        return next(i) % 1000

    def digest() -> bytes:
        return orders[pick()].signing_hash(domain)

    def recover() -> bytes:
        n = pick()
        return recover_signer(digests[n], txs[n].signature)

    def decode() -> SignedTransaction:
        return decode_transaction(raws[pick()])

    def encode() -> bytes:
        return encode_transaction(txs[pick()])

    def parse_json() -> object:
        return message_from_json("Order", jsons[pick()])

    def admit_raw() -> bytes:
        tx = decode_transaction(raws[pick()])
        return tx.recover_signer(domain)

    def admit_json() -> bytes:
        n = pick()
        tx = SignedTransaction(message_from_json("Order", jsons[n]), txs[n].signature)
        raw = encode_transaction(tx)
        return raw + tx.recover_signer(domain)

    results: dict[str, float] = {}
    for name, fn in [
        ("keccak256_64B_per_s", lambda: keccak256(b"\x01" * 64)),
        ("eip712_digest_per_s", digest),
        ("recover_signer_per_s", recover),
        ("decode_tx_per_s", decode),
        ("encode_tx_per_s", encode),
        ("parse_json_order_per_s", parse_json),
        ("admit_raw_decode_digest_recover_per_s", admit_raw),
        ("admit_json_parse_encode_digest_recover_per_s", admit_json),
    ]:
        per_s = rate(fn)
        results[name] = round(per_s)
        results[name.replace("_per_s", "_us")] = round(1e6 / per_s, 2)
    emit("crypto", results)


if __name__ == "__main__":
    main()
