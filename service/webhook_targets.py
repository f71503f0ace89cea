"""Where a webhook may deliver: its URL's host, resolved, checked against the addresses a
delivery must never reach (`models.webhooks.address_problem`, and every address of this
machine, not only loopback). Checked when the webhook is made and again before every
delivery, since a name can come to resolve elsewhere."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from models.webhooks import address_problem, url_problem


def target_problem(
    url: str, allow_loopback: bool = False, require_https: bool = False
) -> str | None:
    """Why deliveries must not be sent to `url` now, or None. `require_https` (production):
    deliveries carry accounts and amounts, and the signature proves who sent them, but only
    TLS keeps them from being read on the way."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    if require_https and not url.lower().startswith("https:"):
        return "url must be https:// when FRAUDWATCH_ENV=prod (alerts are sent in it)"
    parts = urlsplit(url)
    assert parts.hostname is not None  # url_problem holds a URL to have one
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None  # nothing to reach yet; checked again before each delivery
    for family, *_, address in found:
        problem = address_problem(str(address[0]), allow_loopback)
        if problem is None and not allow_loopback and _this_host(family, str(address[0])):
            problem = (f"url resolves to {address[0]}, an address of this machine (its own "
                       "services; FRAUDWATCH_WEBHOOK_ALLOW_LOOPBACK=true allows it)")  # fmt: skip
        if problem is not None:
            return problem
    return None


def _this_host(family: int, address: str) -> bool:
    """Whether the address is one of this machine's own: only those can be bound to."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True
