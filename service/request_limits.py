"""Request limits, enforced before anything parses a body or checks a key.

A plain ASGI middleware in front of the app:
- request line and headers over `MAX_HEADER_BYTES` together are answered 431 (the HTTP server
  has no such cap of its own);
- a declared `Content-Length` over the route's limit is answered 413 at once, without reading
  the body or calling the app (so before authentication too); a malformed one is 400;
- bytes are counted as they stream in (a chunked body, or one longer than declared), and the
  moment the count passes the limit the client gets 413 and the app sees a disconnect;
- a body that stops arriving for `idle_timeout_s`, or is not whole `deadline_s` after the
  request began (a byte every few seconds), is answered 408, so a truncated or dripped body
  cannot hold a request open.
Every answer is JSON like the API's other errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Path, query string and headers together; a browser or a bank's client sends a few KiB.
MAX_HEADER_BYTES = 64 * 1024


class RequestLimits:
    """Caps headers at `MAX_HEADER_BYTES` and request bodies at `max_bytes` (or
    `per_path[path]`), and waits at most `idle_timeout_s` for each part of a body and
    `deadline_s` for all of it."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        idle_timeout_s: float,
        deadline_s: float,
        per_path: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        self.deadline_s = deadline_s
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
        head += sum(len(name) + len(value) for name, value in scope["headers"])
        if head > MAX_HEADER_BYTES:
            detail = f"the request line and headers exceed {MAX_HEADER_BYTES:,} bytes"
            await _answer(send, 431, "headers_too_large", detail)
            return
        limit = self.per_path.get(scope["path"], self.max_bytes)
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            if len(declared) > 1 or not declared[0].isdigit() or len(declared[0]) > 18:
                await _answer(send, 400, "bad_request", "malformed Content-Length header")
                return
            if int(declared[0]) > limit:
                await _answer(send, 413, "payload_too_large", _too_large(limit))
                return
        stream = _LimitedBody(receive, send, limit, self.idle_timeout_s, self.deadline_s)
        try:
            await self.app(scope, stream.receive, stream.send)
        except Exception:
            # The app fails on the disconnect it was handed after the client got its answer.
            if not stream.answered:
                raise


def _too_large(limit: int) -> str:
    return f"the request body is larger than this route accepts ({limit:,} bytes)"


class _LimitedBody:
    """One request's body, counted as it arrives; the app's view of receive and send."""

    def __init__(
        self, receive: Receive, send: Send, limit: int, idle_timeout_s: float, deadline_s: float
    ) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._idle_timeout_s = idle_timeout_s
        self._deadline_s = deadline_s
        self._deadline = asyncio.get_running_loop().time() + deadline_s
        self._received = 0
        self._complete = False
        self._started = False
        self.answered = False  # this middleware answered; the app's own answer is dropped

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        if self._complete:  # only a disconnect can follow: wait for it as long as it takes
            return await self._receive()
        idle_until = asyncio.get_running_loop().time() + self._idle_timeout_s
        try:
            # asyncio.timeout_at, not wait_for: no task per call (this runs on every request).
            async with asyncio.timeout_at(min(idle_until, self._deadline)):
                message = await self._receive()
        except TimeoutError:
            detail = (
                f"the request body stopped arriving for {self._idle_timeout_s:g} s"
                if idle_until <= self._deadline
                else f"the request body was not whole within {self._deadline_s:g} s"
            )
            return await self._refuse(408, "request_timeout", detail)
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                return await self._refuse(413, "payload_too_large", _too_large(self._limit))
            self._complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

    async def _refuse(self, status: int, code: str, detail: str) -> Message:
        """Answer the client now (unless the app already began its answer) and hand the app
        a disconnect, so it stops reading."""
        if not self._started:
            await _answer(self._send, status, code, detail)
        self.answered = True
        return {"type": "http.disconnect"}


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = orjson.dumps({"error": code, "detail": detail})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
