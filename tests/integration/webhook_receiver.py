"""A bank's webhook endpoint for tests: a real local HTTP server that checks every delivery's
signature with its own HMAC (not fraudwatch's code) and keeps what came."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A bank's endpoint: verifies each delivery's signature as a receiver would (its own
    HMAC, not fraudwatch's code), answers with the next scripted status, keeps what came."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.secret = ""
        self.received: list[dict] = []
        self.bad_signatures = 0
        self._statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.take(self.headers, body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/fraudwatch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, headers, body: bytes) -> int:
        parts = dict(p.split("=", 1) for p in headers["X-Fraudwatch-Signature"].split(","))
        mac = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
        fresh = abs(time.time() - int(parts["t"])) < 300
        with self._lock:
            if not (fresh and hmac.compare_digest(mac.hexdigest(), parts["v1"])):
                self.bad_signatures += 1
                return 400
            status = self._statuses.pop(0) if self._statuses else 204
            if 200 <= status < 300:
                self.received.append({"delivery": headers["X-Fraudwatch-Delivery"],
                                      **json.loads(body)})  # fmt: skip
            return status

    def events(self, kind: str) -> dict[str, dict]:
        with self._lock:
            return {e["alert"]["alert_id"]: e["alert"] for e in self.received if e["type"] == kind}
