"""uvicorn's httptools protocol with the two limits it lacks on a request's head (the request
line and headers): a size cap enforced as the bytes arrive, and a deadline.

Without them one connection sending 300 MB of headers grew the API by 310 MB before the
request limits (`service.request_limits`, which see a head only once it is parsed) answered
431, and a few hundred connections each dripping a header line every 15 s were held open for
good, until the process ran out of file descriptors and /healthz went dark. Both are answered
here before the app is called, in the API's JSON error shape, and the connection is closed.
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.request_limits import MAX_HEADER_BYTES

# A client sends its head in one packet or a few; a deadline a slow mobile link meets easily.
HEAD_TIMEOUT_S = 10.0


def _response(status: int, reason: bytes, code: str, detail: str) -> bytes:
    body = orjson.dumps({"error": code, "detail": detail})
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % (status, reason, len(body))
    )
    return head + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a head over `MAX_HEADER_BYTES` with 431 as soon as that many bytes of it have
    arrived, and one not complete within `HEAD_TIMEOUT_S` of its first byte (or of the
    connection opening) with 408."""

    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.head_timeout_s, self._head_too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after parsing: what arrived while the head is still incomplete is all head.
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                detail = f"the request line and headers exceed {MAX_HEADER_BYTES:,} bytes"
                self._refuse(431, b"Request Header Fields Too Large", "headers_too_large", detail)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:  # a further request on a kept-alive connection
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            detail = f"the request line and headers did not arrive within {self.head_timeout_s:g} s"
            self._refuse(408, b"Request Timeout", "request_timeout", detail)

    def _refuse(self, status: int, reason: bytes, code: str, detail: str) -> None:
        self._in_head = False
        self._stop_head_timer()
        self.transport.write(_response(status, reason, code, detail))
        self.transport.close()
