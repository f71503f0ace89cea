"""Masking of personal data: pure functions, and who sees what."""

from __future__ import annotations

import pytest

from service.audit import Disclosure
from service.auth import Caller
from service.masking import mask_device, mask_identifier, mask_ip, mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+8613800138000", "+86 138****8000"),
        ("+86 138 0013 8000", "+86 138****8000"),
        ("13800138000", "138****8000"),
        ("+14155550123", "+141****0123"),
        ("95588", "****88"),
    ],
)
def test_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("ip", "masked"),
    [
        ("203.0.113.9", "203.0.113.*"),
        ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3:*"),
        ("2001:0db8:0000::1", "2001:db8:0:*"),
        ("not-an-ip", "****"),
    ],
)
def test_ip(ip: str, masked: str) -> None:
    assert mask_ip(ip) == masked


@pytest.mark.parametrize(
    ("device", "masked"),
    [("dev-8c1e9f", "dev-****9f"), ("ring-dev", "ri****ev"), ("abc123", "****")],
)
def test_device_hides_at_least_four_characters(device: str, masked: str) -> None:
    assert mask_device(device) == masked


def test_unknown_kind_is_starred_whole() -> None:
    assert mask_identifier("email", "someone@example.com") == "****"


class _Log:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, str]] = []

    def append(self, caller: Caller, method: str, path: str, resource: str) -> None:
        self.entries.append((caller.key_id, method, path, resource))


@pytest.mark.parametrize(
    ("role", "clear"),
    [("admin", True), ("investigator", True), ("bank", False), ("analyst", False)],
)
def test_disclosure_by_role(role: str, clear: bool) -> None:
    log = _Log()
    disclosure = Disclosure(Caller("k1", "n", role), log, "GET", "/v1/x")  # type: ignore[arg-type]
    assert disclosure.identifier("phone", "+8613800138000") == (
        "+8613800138000" if clear else "+86 138****8000"
    )
    assert disclosure.birth_year(1958) == (1958 if clear else None)
    disclosure.audit("account a")
    assert log.entries == ([("k1", "GET", "/v1/x", "account a")] if clear else [])
