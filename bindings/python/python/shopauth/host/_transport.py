"""Performs the engine's ``http_request`` outputs with urllib3."""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol

import urllib3

__all__ = ["Transport", "Urllib3Transport", "MAX_RESPONSE"]

MAX_RESPONSE = 4 << 20  # bytes read from a platform's answer

def _without_query(text: str, url: str) -> str:
    """``text`` with the request URL's query cut out wherever it shows:
    urllib3 quotes the URL it failed on, and a query may carry a secret
    (TikTok Shop's token calls send the app secret there)."""
    _, sep, query = url.partition("?")
    if sep and query:
        text = text.replace(query, "(query removed)")
    return text


class Transport(Protocol):
    """What ``Host(http=...)`` accepts: a callable that performs one
    ``http_request`` output and returns the input to feed back
    (``http_response`` or ``http_failure`` with the same ``request_id``).
    It must not raise (a raise is turned into an ``http_failure``)."""

    def __call__(self, request: Dict[str, Any], /) -> Dict[str, Any]: ...


class Urllib3Transport:
    """One pooled ``urllib3.PoolManager``: keep-alive connections per
    origin, no retries (the engine retries), no redirects followed (the
    engine sees a 3xx as it is), timeouts below the engine's request
    timeout so an answer is never later than the engine's own deadline."""

    def __init__(self, request_timeout_s: float, *, pool_size: int = 4, num_pools: int = 32) -> None:
        total = max(0.1, float(request_timeout_s) * 0.95)
        self.timeout = urllib3.Timeout(total=total, connect=min(10.0, total))
        self.pool = urllib3.PoolManager(num_pools=num_pools, maxsize=pool_size, block=False,
                                        retries=False, timeout=self.timeout)

    def __call__(self, request: Dict[str, Any]) -> Dict[str, Any]:
        rid = request["request_id"]
        body: Optional[str] = request.get("body")
        headers = {str(k): str(v) for k, v in request.get("headers") or []}
        try:
            resp = self.pool.request(
                str(request["method"]), str(request["url"]),
                body=None if body is None else body.encode("utf-8"),
                headers=headers, redirect=False, retries=False, preload_content=False,
                timeout=self.timeout)
            try:
                raw = resp.read(MAX_RESPONSE)
            finally:
                resp.release_conn()
        except urllib3.exceptions.TimeoutError:
            return {"type": "http_failure", "request_id": rid, "error": "timeout"}
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            text = _without_query("%s: %s" % (type(err).__name__, err), str(request["url"]))
            return {"type": "http_failure", "request_id": rid, "error": text[:500]}
        return {"type": "http_response", "request_id": rid, "status": int(resp.status),
                "headers": [[k, v] for k, v in resp.headers.items()],
                "body": raw.decode("utf-8", "replace")}

    def close(self) -> None:
        self.pool.clear()
