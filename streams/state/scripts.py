"""The state's Lua scripts, read from the package with the shared prelude and constants in."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TypeVar

import redis

T = TypeVar("T")


def _lua(name: str) -> str:
    return resources.files("streams.state").joinpath("lua", f"{name}.lua").read_text()


def script_source(name: str, constants: dict[str, int]) -> str:
    """A script's Lua with the shared prelude and its constants filled in (fewer arguments to
    send per call)."""
    source = _lua(name).replace("__PRELUDE__", _lua("prelude"))
    for placeholder, value in constants.items():
        source = source.replace(f"__{placeholder}__", str(value))
    return source


def script_with(name: str, includes: tuple[str, ...] = ()) -> str:
    """A script's Lua with the Lua of `includes` pasted at their `__NAME__` placeholders (the
    functions several scripts share)."""
    source = _lua(name)
    for part in includes:
        source = source.replace(f"__{part.upper()}__", _lua(part))
    return source


def after_script_reload(attempt: Callable[[], T], reload: Callable[[], None]) -> T:
    """`attempt()`, run once more after `reload()` if Redis lost the scripts it calls (a
    restart or a SCRIPT FLUSH). Safe because every script call is idempotent on replay."""
    try:
        return attempt()
    except redis.exceptions.NoScriptError:
        reload()
        return attempt()
