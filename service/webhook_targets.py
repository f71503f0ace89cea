"""Where a webhook may deliver: its URL's host, resolved, checked against the addresses a
delivery must never reach (`models.webhooks.address_problem`). Checked when the webhook is made
and again before every delivery, since a name can come to resolve elsewhere."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from models.webhooks import address_problem, url_problem


def target_problem(url: str, allow_loopback: bool = False) -> str | None:
    """Why deliveries must not be sent to `url` now, or None."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    assert parts.hostname is not None  # url_problem holds a URL to have one
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None  # nothing to reach yet; checked again before each delivery
    for *_, address in found:
        problem = address_problem(str(address[0]), allow_loopback)
        if problem is not None:
            return problem
    return None
