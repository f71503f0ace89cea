"""Hostile HTTP requests, written byte by byte on a raw socket (no client library would send
most of them), and what the server answered, and how fast.

Every request made here is wrong in one way: oversized, truncated or malformed bodies,
hostile headers, huge or nonsensical query strings and paths. Each is expected to get a 4xx."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

MIB = 1024 * 1024
ALERT_ID = "al_" + "0" * 24
POST_ROUTES = (
    "/v1/screen",
    "/v1/keys",
    f"/v1/alerts/{ALERT_ID}/actions",
    "/v1/watchlists/phone",
    "/v1/watchlists/import",
    "/v1/rules/reload",
)
# The routes that read a body (the last POST route takes none, and answers without reading
# one: a body sent there in chunks is never read, so never counted against the limit).
BODY_ROUTES = POST_ROUTES[:-1]
GET_ROUTES = (
    "/v1/alerts",
    "/v1/audit",
    "/v1/keys",
    "/v1/watchlists/account",
    "/v1/accounts/a1/transfers",
    f"/v1/alerts/{ALERT_ID}/history",
)
GOOD_TRANSFER = {
    "transfer_id": "hostile-1", "ts": "2026-03-02T09:41:07+08:00", "src_account": "a",
    "dst_account": "b", "amount": "10.00", "currency": "CNY",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile request: what kind it is, and its bytes (a truncated one's connection is
    left open after them)."""

    kind: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: the status (0 when the connection closed unanswered), the content
    type, the body, and the seconds from the first byte sent to the answer."""

    status: int
    content_type: str
    body: bytes
    seconds: float


def request(method: str, target: str, headers: dict[str, bytes | str], body: bytes = b"") -> bytes:
    """An HTTP/1.1 request in bytes, headers as given (no Content-Length is added)."""
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    for name, value in headers.items():
        raw = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def send(port: int, hostile: Hostile, timeout_s: float = 10.0) -> Answer:
    """Send the request and read the answer (the socket stays open for writing meanwhile,
    as a client whose body stalls would leave it)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        # The server may answer and close before reading it all: then read the answer.
        with contextlib.suppress(OSError):
            sock.sendall(hostile.raw)
        data = b""
        try:
            while not _complete(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return _parse(data, time.perf_counter() - started)


def _complete(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _parse(data: bytes, seconds: float) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return Answer(0, "", data, seconds)
    content_type = ""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            content_type = value.strip().decode()
    return Answer(status, content_type, body, seconds)


def truncated(key: str) -> Iterator[Hostile]:
    """Each POST route that reads a body: the body declared longer than what is sent, the
    connection left open."""
    for route in BODY_ROUTES:
        headers = _auth(key) | {"Content-Type": "application/json", "Content-Length": "5000"}
        yield Hostile("truncated body", request("POST", route, headers, b'{"transfer_id": "'))


def hostile_requests(key: str, count: int, seed: int = 15) -> Iterator[Hostile]:
    """`count` hostile requests of every other kind, drawn with a fixed seed."""
    rng = random.Random(seed)
    makers = [_oversized, _malformed_body, _hostile_headers, _hostile_query, _hostile_path]
    for n in range(count):
        yield makers[n % len(makers)](rng, key)


def _auth(key: str) -> dict[str, bytes | str]:
    return {"Authorization": f"Bearer {key}"}


def _oversized(rng: random.Random, key: str) -> Hostile:
    route = rng.choice(POST_ROUTES)
    # Over 1 MiB, or over the import's own 5 MiB.
    size = rng.choice([6 * MIB, 64 * MIB] if "import" in route else [MIB + 1, 2 * MIB, 64 * MIB])
    headers = _auth(key) | {"Content-Type": "application/json"}
    if rng.random() < 0.5:  # declared: refused before a byte of it is read
        headers["Content-Length"] = str(size)
        return Hostile("oversized, declared", request("POST", route, headers, b"{" * 1024))
    # Chunked, no length: counted as it streams, refused once past the cap.
    route = route if route in BODY_ROUTES else BODY_ROUTES[0]
    headers["Transfer-Encoding"] = "chunked"
    chunk = b"x" * (256 * 1024)
    count = min(size, 6 * MIB) // len(chunk) + 1
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(count))
    return Hostile("oversized, chunked", request("POST", route, headers, chunks + b"0\r\n\r\n"))


def _malformed_body(rng: random.Random, key: str) -> Hostile:
    route = rng.choice(BODY_ROUTES)
    depth = rng.choice([1000, 100_000])
    candidates = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048))),
        b"\xff\xfe" + "{\"transfer_id\": \"é\"}".encode("utf-16-le"),
        b"[" * depth + b"]" * depth,
        b'{"a":' * depth + b"1" + b"}" * depth,
        json.dumps(GOOD_TRANSFER | {"amount": "9" * 400}).encode(),
        json.dumps(GOOD_TRANSFER).replace('"10.00"', "1e400").encode(),
        json.dumps(GOOD_TRANSFER | {"ts": "9999-12-31T23:59:59-01:00"}).encode(),
        json.dumps(GOOD_TRANSFER | {"ts": "0001-01-01T00:00:00+14:00"}).encode(),
        json.dumps(GOOD_TRANSFER)[: rng.randrange(1, 60)].encode(),
        json.dumps(rng.choice([[], 0, None, "x", True, {}])).encode(),
        b'{"transfer_id": "a\x00b", "note": "\x00"}',
        b'\xef\xbb\xbf{"role": "root", "name": "' + b"n" * 5000 + b'"}',
        b"kind,value\n" + b"\x00" * 300 + b"\n",
    ]
    body = rng.choice(candidates)
    headers = _auth(key) | {"Content-Type": rng.choice(["application/json", "text/csv",
                                                        "text/plain", "\x01;;="]),
                            "Content-Length": str(len(body))}  # fmt: skip
    return Hostile("malformed body", request("POST", route, headers, body))


def _hostile_headers(rng: random.Random, key: str) -> Hostile:
    route = rng.choice(GET_ROUTES)
    choice = rng.randrange(6)
    headers: dict[str, bytes | str] = _auth(key)
    if choice == 0:
        headers["X-Junk"] = "a" * rng.choice([70_000, 1_000_000])
    elif choice == 1:
        for i in range(rng.choice([7_000, 20_000])):
            headers[f"X-H{i}"] = "0123456789"
    elif choice == 2:
        headers["Authorization"] = b"Bearer " + bytes(rng.randrange(128, 256) for _ in range(40))
    elif choice == 3:
        headers["Authorization"] = "Bearer " + "k" * rng.choice([100, 60_000, 2_000_000])
    elif choice == 4:
        headers["Authorization"] = rng.choice(["Basic Zm9vOmJhcg==", "Bearer", "bearer  ", "x"])
    else:
        headers["Content-Length"] = rng.choice(["-1", "1e3", "99999999999999999999999", "0x10"])
    return Hostile("hostile headers", request("GET", route, headers))


def _hostile_query(rng: random.Random, key: str) -> Hostile:
    route = rng.choice(GET_ROUTES)
    choice = rng.randrange(5)
    if choice == 0:
        query = "cursor=" + "A" * rng.choice([70_000, 500_000])
    elif choice == 1:  # unknown parameters are ignored, so: too many to read at all
        query = "&".join(f"p{i}=v" for i in range(rng.choice([15_000, 30_000])))
    elif choice == 2:
        query = rng.choice(["limit=-1", "limit=99999999999999999999999", "limit=1e9",
                            "limit=%00", "limit=NaN", "limit=0"])  # fmt: skip
    elif choice == 3:  # a cursor no route issued ("__79": base64 of bytes that are not UTF-8)
        query = "cursor=" + rng.choice(["%ff%fe", "%00", "o%3A" + "9" * 30, "....", "=" * 50,
                                        "__79" * 40])  # fmt: skip
    else:  # a value the route's own parameter cannot take
        route, query = rng.choice([
            ("/v1/alerts", "since=last%20tuesday"), ("/v1/alerts", "until=9999-99-99"),
            ("/v1/alerts", "since=0001-01-01T00:00"), ("/v1/audit", "until=1969-12-31T00:00Z"),
            ("/v1/alerts", "severity=%F0%9F%92%A3"), ("/v1/accounts/a1/transfers",
                                                     "direction=sideways"),
        ])  # fmt: skip
    return Hostile("hostile query", request("GET", f"{route}?{query}", _auth(key)))


def _hostile_path(rng: random.Random, key: str) -> Hostile:
    target = rng.choice([
        "/v1/alerts/" + "z" * rng.choice([30, 5000]),
        "/v1/trace/" + "%F0%9F%92%A3" * 10,
        "/v1/trace/a b",
        "/v1/accounts/" + "a" * 65 + "/risk",
        "/v1/watchlists/card",
        "/v1/../../../etc/passwd",
        "/v1/alerts/%2e%2e/history",
        "/" + "v1/" * 20_000,
        "/v1/keys/not-a-key-id",
    ])  # fmt: skip
    method = "DELETE" if target.startswith("/v1/keys/") else "GET"
    return Hostile("hostile path", request(method, target, _auth(key)))
