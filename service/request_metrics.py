"""Request counts and durations by route template, for `/metrics`.

A plain ASGI middleware: Starlette's `@app.middleware("http")` runs every request through an
extra task and a response stream, which cost a screening request more than its model call.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import HTTP_REQUESTS, HTTP_SECONDS


class RequestMetrics:
    """Counts and times each HTTP request under the path template of the route that served it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before it answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # Routing leaves the matched route in the scope: no second match per request.
            route = scope.get("route")
            label = str(getattr(route, "path", "other")) if route is not None else "unmatched"
            HTTP_SECONDS.labels(label).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(label, scope["method"], str(status)).inc()
