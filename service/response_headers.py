"""Headers every API answer carries, as a plain ASGI middleware (see `request_metrics`).

`/v1` answers may hold personal data (identifiers in clear for investigators, account risk):
`Cache-Control: no-store` keeps them out of browser and proxy caches. Every answer says
`X-Content-Type-Options: nosniff`, so a JSON body is never taken for a page. The console's
pages set their own, stricter headers (`service/routes/console.py`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = [(b"x-content-type-options", b"nosniff")]
_PRIVATE = [(b"cache-control", b"no-store")]


class ResponseHeaders:
    """Adds `nosniff` to every HTTP answer, and `no-store` to those under `/v1`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _ALWAYS + (_PRIVATE if scope["path"].startswith("/v1/") else [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
