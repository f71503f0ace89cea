"""Request limits as an ASGI middleware: headers, and declared, streamed and stalled bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from service.request_limits import MAX_HEADER_BYTES, RequestLimits


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body and answers its length: what any route that parses a body does."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RuntimeError("client went away")  # as Starlette's ClientDisconnect does
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def call(
    parts: list[bytes],
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/v1/screen",
    stall_after: int | None = None,
    deadline_s: float = 5.0,
    drip_s: float = 0.0,
) -> tuple[int, Any, int]:
    """Send the body in `parts` (stalling after `stall_after` of them); the status, the body
    and how many parts the app was handed."""
    chunks: Iterator[bytes] = iter(parts)
    sent: list[Message] = []
    handed = 0

    async def receive() -> Message:
        nonlocal handed
        if stall_after is not None and handed == stall_after:
            await asyncio.sleep(60)
        await asyncio.sleep(drip_s)
        handed += 1
        chunk = next(chunks, b"")
        return {"type": "http.request", "body": chunk, "more_body": handed < len(parts)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "method": "POST", "headers": headers or []}  # fmt: skip
    middleware = RequestLimits(
        echo_length, 100, 0.2, deadline_s, per_path={"/v1/watchlists/import": 1000}
    )
    asyncio.run(middleware(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    try:
        return status, json.loads(body), handed
    except ValueError:
        return status, body.decode(), handed


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    assert call([b"x" * 60, b"y" * 40]) == (200, 100, 2)


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    status, body, handed = call([b"x"], headers=[(b"content-length", b"101")])
    assert (status, handed) == (413, 0)
    assert body["error"] == "payload_too_large" and "100 bytes" in body["detail"]


def test_a_streamed_body_is_refused_the_moment_it_passes_the_limit() -> None:
    status, body, handed = call([b"x" * 60, b"y" * 60, b"z" * 60, b"w" * 60])
    assert (status, handed) == (413, 2)
    assert body["error"] == "payload_too_large"


def test_a_false_content_length_does_not_lift_the_limit() -> None:
    status, _, _ = call([b"x" * 80, b"y" * 80], headers=[(b"content-length", b"10")])
    assert status == 413


def test_a_route_with_its_own_cap_gets_it() -> None:
    assert call([b"x" * 900], path="/v1/watchlists/import")[:2] == (200, 900)
    assert call([b"x" * 600, b"x" * 600], path="/v1/watchlists/import")[0] == 413


def test_a_body_that_stops_arriving_is_answered_408() -> None:
    status, body, _ = call([b"x" * 10, b"y" * 10], stall_after=1)
    assert status == 408 and body["error"] == "request_timeout"


def test_a_body_dripped_within_each_wait_is_answered_408_at_the_deadline() -> None:
    # One byte every 0.1 s never trips the 0.2 s wait between parts; the whole has a deadline.
    status, body, handed = call([b"x"] * 50, deadline_s=1.0, drip_s=0.1)
    assert status == 408 and "not whole within 1 s" in body["detail"] and handed < 20
    assert call([b"x"] * 5, deadline_s=1.0, drip_s=0.1)[:2] == (200, 5)


def test_a_malformed_content_length_is_400() -> None:
    for value in (b"-1", b"12abc", b"9" * 40):
        status, body, handed = call([b"x"], headers=[(b"content-length", value)])
        assert (status, handed) == (400, 0) and body["error"] == "bad_request"


def test_headers_over_the_cap_are_431_before_the_app_runs() -> None:
    big = [(b"x-junk", b"a" * (MAX_HEADER_BYTES // 2))] * 2
    status, body, handed = call([b"{}"], headers=big)
    assert (status, handed) == (431, 0) and body["error"] == "headers_too_large"
    assert call([b"{}"], headers=big[:1])[0] == 200
