"""The investigator console: static files under `/console/`, public like any web page.

Everything it shows comes from the `/v1` API with the user's own key (kept in the browser's
session storage), so serving the page itself needs no key. The files are plain HTML, CSS and
ES modules shipped in `service/console/`: no build step, no CDN, works offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
# Only our own files run; data goes only to this origin; no framing (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate each load, so a deployed change is picked up on reload.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install_console(app: FastAPI) -> None:
    """Serve the console at `/console/` (and send `/console` there)."""

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    # check_dir=False: an install without the files (a wheel built without them as package
    # data) serves 404 under /console/ rather than refusing to start the API.
    files = ConsoleFiles(directory=CONSOLE_DIR, html=True, check_dir=False)
    app.mount("/console", files, name="console")
