"""Canonical forms of the personal identifiers that are pseudonymised (phones, IPs). Pure.

One phone or one IP written two ways must get one pseudonym, or a watchlisted phone is
missed and a "two cards" count splits in two. So, before hashing:
- an IP address takes its canonical text (`2001:DB8::1` and `2001:db8:0::1` → `2001:db8::1`),
  and an IPv4-mapped IPv6 address its IPv4 form (`::ffff:192.0.2.1` → `192.0.2.1`);
- a phone number takes its E.164 form (`+8613800138000`) as Google's libphonenumber reads
  it: `+86 138 0013 8000`, `0086 138 0013 8000` and `13800138000` (a national number of the
  default region, here China) are one number. Something that is not a phone number at all
  keeps its digits (and a leading `+`), or, without digits, its trimmed lower-case text.
Device ids are opaque: only surrounding blanks are dropped.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import phonenumbers

DEFAULT_PHONE_REGION = "CN"
_NOT_DIGITS = re.compile(r"\D")


def is_phone_region(region: str) -> bool:
    """Whether `region` (ISO 3166-1 alpha-2) has a numbering plan to read national numbers in."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def canonical_ip(value: str) -> str:
    """The canonical text of an IP address (an IPv4-mapped IPv6 address as IPv4); anything
    that is not an address is only trimmed and lower-cased."""
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


# Recurring numbers are the rule in a transfer stream; parsing one costs ~25 µs.
@lru_cache(maxsize=8192)
def canonical_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 (`+8613800138000`) of a phone number written in any usual way; a number without
    `+` or `00` in front is read as one of `region`."""
    text = value.strip()
    # `00` is the international prefix as the README promises it, whatever `region` dials
    # abroad with (libphonenumber read `0086 139…` as +61 39… for HK, as national for JP).
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        digits = _NOT_DIGITS.sub("", text)
        if not digits:
            return text.lower()
        return ("+" if text.startswith("+") else "") + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def canonical_identifier(kind: str, value: str, phone_region: str = DEFAULT_PHONE_REGION) -> str:
    """The form of a device id, phone or IP that its pseudonym is computed from."""
    if kind == "phone":
        return canonical_phone(value, phone_region)
    if kind == "ip":
        return canonical_ip(value)
    return value.strip()
