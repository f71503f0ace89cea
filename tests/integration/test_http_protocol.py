"""The API's HTTP server refuses a request head that is too large as it arrives, and one that
does not arrive in time: neither a header bomb nor a slow drip of headers holds the process."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from service.http_protocol import BoundedHttpToolsProtocol
from service.request_limits import MAX_HEADER_BYTES
from tests.integration.console_browser import api_server
from tests.integration.keyed_api import api_settings


def _connect(base: str) -> socket.socket:
    url = urlsplit(base)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def _answer(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_head_over_the_cap_is_refused_as_it_arrives(services, tmp_path) -> None:
    # 300 MB of headers on one connection grew the API by 310 MB before it answered.
    with api_server(api_settings(services, tmp_path)) as base, _connect(base) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Junk: ")
        connection.sendall(b"a" * (MAX_HEADER_BYTES + 100))  # and no end of the head
        answer = _answer(connection)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b'"error":"headers_too_large"' in answer
        # A head within the cap is served as ever, on the same server.
        assert httpx.get(f"{base}/healthz", headers={"X-Junk": "a" * 1000}).status_code == 200


def test_a_head_that_does_not_arrive_in_time_is_408_and_the_connection_freed(
    services, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Connections dripping a header line every 15 s were held for good, until the process ran
    # out of file descriptors.
    monkeypatch.setattr(BoundedHttpToolsProtocol, "head_timeout_s", 0.5)
    with api_server(api_settings(services, tmp_path)) as base:
        with _connect(base) as dripping:
            dripping.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n")
            answer = _answer(dripping)  # the server closes it: recv ends
            assert answer.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in answer
        with _connect(base) as silent:  # connected, never sent a byte
            assert _answer(silent).startswith(b"HTTP/1.1 408 ")
        # Requests on a kept-alive connection each get their own deadline.
        with httpx.Client() as client:
            for _ in range(3):
                assert client.get(f"{base}/healthz").status_code == 200
