"""Signed export of alerts to a bank's own systems: the pure parts. No I/O.

A webhook receives a POST of `{"type", "alert"}` for each event it subscribed to
(`alert.created`, `alert.updated`), signed with its secret:

    X-Fraudwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver recomputes the HMAC over the raw bytes it received, compares in constant time, and
refuses a `t` too far from its clock (replays). A delivery that fails is retried with a
doubling pause for 24 hours, then given up (and logged).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Fraudwatch-Signature"
EVENTS = ("alert.created", "alert.updated")
Outcome = Literal["delivered", "retrying", "failed"]
MAX_URL_LENGTH = 2000


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp_s`."""
    digest = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: the header is well formed, its time within `tolerance_s` of
    `now_s`, and its HMAC that of `body`."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_secret(server_key: str, webhook_id: str, nonce: str) -> str:
    """A webhook's signing secret, derived from the server's key and the webhook's random
    nonce: shown once when the webhook is made and never stored, so a copy of Redis alone
    cannot sign (or read) it."""
    digest = hmac.new(server_key.encode(), f"webhook:{webhook_id}:{nonce}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def delivery_id(webhook_id: str, event_id: str) -> str:
    """One delivery per webhook and event, however often the event is read."""
    return "dl_" + hashlib.sha256(f"{webhook_id}|{event_id}".encode()).hexdigest()[:24]


def url_problem(url: str) -> str | None:
    """Why `url` cannot take deliveries, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"url must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port out of range
    except ValueError as error:
        return f"url is not a URL: {error}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "url must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "url must not carry credentials (the signature authenticates deliveries)"
    return None


# Cloud platforms' metadata and platform services outside link-local: Alibaba Cloud's, AWS's
# over IPv6, Azure's wire server (the link-local ones, 169.254.169.254 too, are refused whole).
PLATFORM_SERVICES = frozenset(
    ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254", "168.63.129.16")
)


def address_problem(address: str, allow_loopback: bool = False) -> str | None:
    """Why deliveries must not go to this IP address, or None: the machine's own services
    (loopback, unless allowed: a receiver on the same host in development), the cloud metadata
    services (link-local and `PLATFORM_SERVICES`), and addresses no receiver has. A bank's
    private networks (10/8, 172.16/12, 192.168/16) are allowed: its case system lives there."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in PLATFORM_SERVICES:
        return f"url resolves to {ip}, a cloud platform's metadata service, not a receiver"
    if ip.is_loopback and not allow_loopback:
        return (f"url resolves to the loopback address {ip}, this machine's own services "
                "(FRAUDWATCH_WEBHOOK_ALLOW_LOOPBACK=true allows it)")  # fmt: skip
    if ip.is_link_local:
        return f"url resolves to the link-local address {ip} (a metadata service, not a receiver)"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"url resolves to {ip}, which no receiver has"
    return None


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When a failed delivery is tried again: `first_s` after the first failure, doubling up
    to `max_s` between attempts, until `give_up_s` after the first attempt."""

    first_s: float = 10.0
    max_s: float = 3600.0
    give_up_s: float = 24 * 3600.0

    def next_attempt_ms(self, first_attempt_ms: int, attempts: int, now_ms: int) -> int | None:
        """When to try again after `attempts` failed ones (None: give up)."""
        pause_s = min(self.first_s * 2 ** max(attempts - 1, 0), self.max_s)
        due = now_ms + int(pause_s * 1000)
        return None if due - first_attempt_ms > self.give_up_s * 1000 else due
