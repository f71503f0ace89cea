"""Where webhook deliveries may go: never this machine's own services (unless allowed for a
receiver beside it), never the metadata service; a bank's private networks are fine."""

from __future__ import annotations

import socket

import pytest

from service.webhook_targets import target_problem


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://100.100.100.200/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://168.63.129.16/machine?comp=goalstate", "metadata"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://127.0.0.1:8000/v1/watchlists", "loopback"),
        ("http://localhost:6379/", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "no receiver"),
        ("http://224.0.0.1/hook", "no receiver"),
        ("ftp://cases.bank.example/hook", "http:// or https://"),
    ],
)
def test_deliveries_never_go_to_the_machine_itself_or_its_metadata_service(
    url: str, fragment: str
) -> None:
    problem = target_problem(url)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    "url", ["https://10.20.30.40/fraudwatch", "http://192.168.1.10:8080/hook",
            "https://cases.bank.invalid/hook"],
)  # fmt: skip
def test_a_banks_private_network_and_names_not_resolvable_yet_are_accepted(url: str) -> None:
    assert target_problem(url) is None


def test_this_machines_own_addresses_are_refused_not_only_loopback() -> None:
    """The host's interface address reaches its own services as loopback does."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.200", 9))  # (no packet is sent) the route's source address
        own = probe.getsockname()[0]
    if own.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    problem = target_problem(f"http://{own}:18761/hook")
    assert problem is not None and "an address of this machine" in problem
    assert target_problem(f"http://{own}:18761/hook", allow_loopback=True) is None


def test_loopback_is_allowed_when_configured() -> None:
    assert target_problem("http://127.0.0.1:9/hook", allow_loopback=True) is None
    link_local = target_problem("http://169.254.169.254/", allow_loopback=True)
    assert link_local is not None
