"""Shared by unit and integration tests: a configuration environment free of the developer's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from service.settings import get_settings


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hide the developer's FRAUDWATCH_* variables so every test sees the documented defaults."""
    for name in list(os.environ):
        if name.startswith("FRAUDWATCH_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
