"""Running the console for browser tests: the API in a thread on a free port, and Debian's
Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from service.app import create_app
from service.embedded import free_port
from service.http_protocol import BoundedHttpToolsProtocol
from service.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
README_SCREENSHOTS = REPO / "service" / "console" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


def rules_only(settings: Settings) -> Settings:
    """The settings scoring with the rules alone: the console tests need the rules' alerts
    on their small rings whatever a trained model would make of them (a model's reason is
    shown through a stored alert instead)."""
    if "model_path" in type(settings).model_fields:
        return settings.model_copy(update={"model_path": None})
    return settings


@contextlib.contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    """`create_app(settings)` served by uvicorn in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        http=BoundedHttpToolsProtocol,  # as `fraudwatch api` serves it
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def screenshot(page: Any, name: str, *, for_readme: bool = False) -> Path:
    """Save the viewport under tests/artifacts/ (and, when asked, for the README)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if for_readme:
        # A 256-colour palette keeps the committed copy small; the UI has few colours.
        from PIL import Image

        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            small.save(README_SCREENSHOTS / f"{name}.png", optimize=True)
    return path
