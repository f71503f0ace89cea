"""The embedded services, topic creation and file producing, against the real binaries."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient

from service import embedded
from service.embedded import EmbeddedServices, ServiceStartError, embedded_services
from service.embedded.broker import start_broker
from service.embedded.process import port_open
from service.settings import Settings
from streams.produce import LinesTooLarge, produce_accounts_file, produce_file
from streams.topics import ensure_topics
from tests.integration.conftest import SettingsFactory, TopicFactory, TopicReader, TopicSet

REPO_ROOT = Path(__file__).resolve().parents[2]

# Lines as a bank might send them: odd spacing and unicode must arrive untouched, and lines the
# worker will reject (broken JSON, not an object, a non-string key) must arrive too.
LINES: list[tuple[bytes, bytes | None]] = [
    (b'{"transfer_id":"t1","src_account":"A1","amount":"10.00"}', b"A1"),
    (b'{ "src_account" : "B2" , "amount": 1.10, "memo": "\xe5\x80\x9f\xe6\xac\xbe"}', b"B2"),
    ('{"src_account":"客户-7","amount":"1e2"}'.encode(), "客户-7".encode()),
    (b'{"src_account": "A1", broken', None),
    (b'["src_account", "A1"]', None),
    (b'{"src_account": 42}', None),
    (b'{"transfer_id":"t9"}', None),
]


def _write_jsonl(path: Path, lines: list[bytes]) -> None:
    # A CRLF line and blank lines: line endings are not part of a record, blank lines are none.
    body = b"\n".join(lines[:-1]) + b"\n\n" + lines[-1] + b"\r\n\n"
    if path.suffix == ".gz":
        body = gzip.compress(body)
    path.write_bytes(body)


def _is_running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie left for the machine's init to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in pids if _is_running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def test_session_services_answer(services: EmbeddedServices) -> None:
    assert services.kafka_bootstrap == f"127.0.0.1:{services.broker.port}"
    assert services.redis_url == f"redis://127.0.0.1:{services.redis.port}/0"
    assert {services.broker.port, services.redis.port}.isdisjoint({6379, 9092})
    assert redis.Redis.from_url(services.redis_url).ping()
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        assert admin.describe_cluster()["brokers"]
    finally:
        admin.close()
    assert (services.workdir / "tansu.log").exists()
    assert (services.workdir / "redis.log").exists()


def test_ensure_topics_is_idempotent_and_keeps_partitions(
    services: EmbeddedServices, make_topics: TopicFactory
) -> None:
    topic_set = make_topics(partitions=3)
    ensure_topics(services.kafka_bootstrap, topic_set.names, 3)
    ensure_topics(services.kafka_bootstrap, topic_set.names, 5)
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        described = admin.describe_topics(topic_set.names)
    finally:
        admin.close()
    assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(topic_set.names, 3)


def test_fraudwatch_topics_follow_settings(topics: TopicSet, settings_for: SettingsFactory) -> None:
    assert Settings().topics() == ["transfers", "accounts", "alerts", "transfers.dlq"]
    assert settings_for(topics).topics() == topics.names


@pytest.mark.parametrize("name", ["transfers.jsonl", "transfers.jsonl.gz"])
def test_produce_file_sends_the_exact_bytes(
    name: str, tmp_path: Path, services: EmbeddedServices, topics: TopicSet, read_topic: TopicReader
) -> None:
    path = tmp_path / name
    _write_jsonl(path, [line for line, _ in LINES])

    sent = produce_file(path, services.kafka_bootstrap, topics.transfers)

    assert sent == len(LINES)
    records = read_topic(topics.transfers)
    assert [(r.value, r.key) for r in records] == LINES


def test_a_line_too_large_for_a_message_is_named_and_the_others_are_sent(
    tmp_path: Path, services: EmbeddedServices, topics: TopicSet, read_topic: TopicReader
) -> None:
    """A bank's file with one 2 MB line: `produce` stopped there with "the Kafka broker did not
    answer", leaving the rest of the file unsent."""
    huge = b'{"transfer_id":"memo","memo":"' + b"x" * 2_000_000 + b'"}'
    good = [line for line, _ in LINES[:2]]
    path = tmp_path / "transfers.jsonl"
    _write_jsonl(path, [good[0], huge, good[1]])

    with pytest.raises(LinesTooLarge, match=r"line 2 \(2,000,032 bytes\)") as refused:
        produce_file(path, services.kafka_bootstrap, topics.transfers)

    assert refused.value.sent == 2 and refused.value.too_large == [(2, len(huge))]
    assert [r.value for r in read_topic(topics.transfers)] == good


def test_produce_accounts_file_keys_by_account_id(
    tmp_path: Path, services: EmbeddedServices, topics: TopicSet, read_topic: TopicReader
) -> None:
    path = tmp_path / "accounts.jsonl"
    lines = [b'{"account_id":"A1","holder_birth_year":1950}', b'{"account_id":"B2"}']
    path.write_bytes(b"\n".join(lines) + b"\n")

    assert produce_accounts_file(path, services.kafka_bootstrap, topics.accounts) == 2
    assert [(r.value, r.key) for r in read_topic(topics.accounts)] == [
        (lines[0], b"A1"),
        (lines[1], b"B2"),
    ]


def test_stopping_leaves_no_process_and_frees_the_ports(tmp_path: Path) -> None:
    with embedded_services(tmp_path) as running:
        procs = running.processes
        assert all(p.alive() for p in procs)
    assert [p.popen.returncode for p in procs] == [0, 0]
    assert not _wait_gone([p.pid for p in procs], timeout_s=0)
    assert not any(port_open(p.port) for p in procs if p.port is not None)


# A parent that holds the services until a signal arrives; it prints its children's pids.
HOLDER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from service.embedded import embedded_services
    # A shell's background job inherits SIGINT ignored, and a run under nohup SIGHUP ignored
    # (which the services rightly respect); act like a process in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    with embedded_services(Path(sys.argv[1])) as running:
        print(*(p.pid for p in running.processes), flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_no_orphans_when_the_parent_is_interrupted(sig: signal.Signals, tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(children) == 2, "the parent did not start its services"
        parent.send_signal(sig)
        parent.wait(timeout=15)
        assert _wait_gone(children) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_broker_failure_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: cannot open storage'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))

    with pytest.raises(ServiceStartError, match="exited with code 3") as raised:
        start_broker(tmp_path)
    assert "tansu: cannot open storage" in str(raised.value)


def test_a_taken_port_is_refused(services: EmbeddedServices, tmp_path: Path) -> None:
    with pytest.raises(ServiceStartError, match="already in use"):
        start_broker(tmp_path, services.broker.port)


def test_missing_redis_server_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded.redis_server.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(ServiceStartError, match=r"apt-get install -y redis-server"):
        embedded.redis_server.start_redis(tmp_path)


def test_children_lead_their_own_process_groups(services: EmbeddedServices) -> None:
    # So a terminal's Ctrl-C reaches only the parent, which then stops them in order.
    for proc in services.processes:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
