"""
JSON-RPC 2.0 over HTTP POST with aiohttp: one request or a batch, an answer or a
typed error (:class:`RpcError` and its subclasses, :class:`TransportError` when no
JSON-RPC answer came back at all).
"""

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from .errors import TransportError, error_from_json


def json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def request(request_id: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    """POST a JSON-RPC body; the decoded JSON answer. :class:`TransportError` if there is
    no JSON answer."""
    data = json.dumps(body, default=json_default)
    headers = {"Content-Type": "application/json"}
    try:
        async with session.post(url, data=data, headers=headers) as reply:
            text = await reply.text()
            status = reply.status
    except (aiohttp.ClientError, OSError) as exc:
        raise TransportError(f"cannot reach the sequencer at {url}: {exc}") from exc
    except TimeoutError as exc:
        raise TransportError(f"the sequencer at {url} did not answer in time") from exc
    try:
        return json.loads(text)
    except ValueError:
        raise TransportError(f"HTTP {status} from {url}: {text[:200]!r}") from None


async def rpc(session: aiohttp.ClientSession, url: str, request: dict[str, Any]) -> Any:
    reply = await post(session, url, request)
    if not isinstance(reply, dict):
        raise TransportError(f"{url}: not a JSON-RPC answer: {reply!r}"[:300])
    if "error" in reply:
        raise error_from_json(reply["error"])
    if "result" not in reply:
        raise TransportError(f"{url}: not a JSON-RPC answer: {reply!r}"[:300])
    return reply["result"]
