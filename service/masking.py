"""Masking of personal data for roles that do not need it in clear. Pure functions.

The shapes keep enough to tell two values apart at a glance and to recognise one a customer
reads out, never enough to contact or track the person: a phone keeps its first 3 and last 4
digits (`+86 138****8000`), an IPv4 address its /24 (`203.0.113.*`), an IPv6 address its /48,
a device id its first few and last 2 characters (`dev-****9f`), a birth year nothing.
"""

from __future__ import annotations

import ipaddress
import re

STARS = "****"
_NON_DIGITS = re.compile(r"\D")


def mask_phone(phone: str) -> str:
    """`+8613800138000` → `+86 138****8000`; other numbers keep first 3 and last 4 digits."""
    digits = _NON_DIGITS.sub("", phone)
    prefix = ""
    if phone.strip().startswith("+86") and len(digits) > 11:
        prefix, digits = "+86 ", digits[2:]
    elif phone.strip().startswith("+"):
        prefix = "+"
    if len(digits) <= 7:
        return prefix + STARS + digits[-2:]
    return f"{prefix}{digits[:3]}{STARS}{digits[-4:]}"


def mask_ip(ip: str) -> str:
    """`203.0.113.9` → `203.0.113.*`; IPv6 keeps its first three groups (the /48)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return STARS
    if address.version == 4:
        return ".".join(str(address).split(".")[:3]) + ".*"
    groups = address.exploded.split(":")[:3]
    return ":".join(group.lstrip("0") or "0" for group in groups) + ":*"


def mask_device(device_id: str) -> str:
    """`dev-8c1e9f` → `dev-****9f`: up to 4 leading and the 2 last characters, always
    hiding at least 4 (a short id is starred whole)."""
    if len(device_id) <= 6:
        return STARS
    return device_id[: min(4, len(device_id) - 6)] + STARS + device_id[-2:]


MASKS = {"phone": mask_phone, "ip": mask_ip, "device": mask_device}


def mask_identifier(kind: str, value: str) -> str:
    """A device, phone or IP value masked by its kind (anything else fully starred)."""
    mask = MASKS.get(kind)
    return mask(value) if mask is not None else STARS
