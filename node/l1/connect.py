"""The daemons' connection to L1."""

from web3 import Web3
from web3.types import RPCEndpoint


def connect(url: str, *, timeout: float = 10) -> Web3:
    """
    A Web3 over HTTP for a long-running daemon.

    An L1 node's chain id does not change, yet web3's validation asks for it before
    every call and transaction: about 40% of an idle sequencer's L1 requests. Here it is
    asked once and remembered (web3's own request cache, limited to ``eth_chainId``).
    The daemons check it against their config at start.
    """
    provider = Web3.HTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)
