"""Operating the embedded stack: a real Prometheus scrapes it, its logs keep personal data out,
and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from rules.loader import load_rule_library
from service.embedded import free_port
from service.settings import Settings
from tests.integration.harness import wait_for
from tests.integration.webhook_receiver import Receiver
from tests.traffic import T0, as_jsonl, background, event, fan_out_ring

PROMETHEUS = shutil.which("prometheus")


@dataclass
class Stack:
    """A running `fraudwatch up` and what it was sent."""

    proc: subprocess.Popen[bytes]
    home: Path
    run: dict[str, str]
    sent: list[dict]


def _children(pid: int) -> set[int]:
    """Every descendant process of `pid`."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent and int(entry.name) not in found:
                found.add(int(entry.name))
                frontier.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`fraudwatch up` on its own embedded services, fed a fan-out ring and background traffic."""
    home = tmp_path_factory.mktemp("fw-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    env |= {
        "FRAUDWATCH_HOME": str(home),
        "FRAUDWATCH_API_PORT": str(free_port()),
        "FRAUDWATCH_MAX_POLL_INTERVAL_MS": "3000",
        "FRAUDWATCH_SESSION_TIMEOUT_MS": "6000",
        # The test's webhook receiver listens on this machine.
        "FRAUDWATCH_WEBHOOK_ALLOW_LOOPBACK": "true",
    }
    log = (home / "up.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "up"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: (home / "run.json").exists(), timeout_s=90, what="run.json")
        run = json.loads((home / "run.json").read_text())
        sent = fan_out_ring("ops") + background(seed=11, count=200)
        # The ring's payment of a week and a day before goes first, on its own: partitions are
        # read in no global order, and observation begins with the first transfer applied.
        first, rest = home / "first.jsonl", home / "traffic.jsonl"
        first.write_bytes(as_jsonl(sent[:1]))
        rest.write_bytes(as_jsonl(sent[1:]) + b"this line is not json\n")
        produce = [sys.executable, "-m", "service.cli", "produce"]
        subprocess.run([*produce, str(first)], env=env, check=True, capture_output=True)
        wait_for(lambda: _metric(run["metrics_url"], "fraudwatch_transfers_total") == 1,
                 timeout_s=90, what="the first transfer scored")  # fmt: skip
        subprocess.run([*produce, str(rest)], env=env, check=True, capture_output=True)
        yield Stack(proc, home, run, sent)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        log.close()


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _prom_query(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict] = json.loads(response.read())["data"]["result"]
    return result


def _api_alerts(stack: Stack) -> list[dict]:
    request = urllib.request.Request(
        f"{stack.run['api_url']}/v1/alerts?limit=500",
        headers={"Authorization": f"Bearer {stack.run['api_key']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        items: list[dict] = json.loads(response.read())["items"]
    return items


def test_prometheus_scrapes_transfers_alerts_and_dead_letters(stack: Stack, tmp_path: Path) -> None:
    assert PROMETHEUS, "prometheus is missing: apt-get install -y prometheus"
    metrics_url = stack.run["metrics_url"]
    wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total") == len(stack.sent),
             timeout_s=90, what="all transfers scored")  # fmt: skip
    # The state began with the ring's payment of eight days before (event time).
    assert 8 <= _metric(metrics_url, "fraudwatch_observation_days") < 9
    # Retries are exported before the first one, so a rate() of them reads 0, not nothing.
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        exported = response.read().decode().splitlines()
    kinds = {line.split('"')[1] for line in exported
             if line.startswith("fraudwatch_batch_retries_total{")}  # fmt: skip
    assert kinds == {"transient", "permanent"}, kinds
    target = urllib.parse.urlparse(metrics_url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: fraudwatch\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def scraped() -> bool:
            try:
                series = _prom_query(base, "fraudwatch_transfers_total")
            except OSError:
                return False
            return bool(series) and float(series[0]["value"][1]) == len(stack.sent)

        wait_for(scraped, timeout_s=60, what="Prometheus to scrape fraudwatch_transfers_total")
        # Every alert the API holds is counted once, under a real rule (or `model`).
        alerts = _prom_query(base, "fraudwatch_alerts_total")
        raised = _api_alerts(stack)
        assert raised and sum(float(s["value"][1]) for s in alerts) == len(raised)
        assert {s["metric"]["severity"] for s in alerts} <= {"low", "medium", "high", "critical"}
        rule_ids = {rule.id for rule in load_rule_library(Settings().rules_dir).rules}
        assert {s["metric"]["rule"] for s in alerts} <= rule_ids | {"model"}
        dead = _prom_query(base, 'fraudwatch_dlq_total{reason="malformed_json"}')
        assert dead and float(dead[0]["value"][1]) == 1
        assert _prom_query(base, "fraudwatch_batch_seconds_count")
        # The dashboard's "model in service" panel: the worker reports its model.
        assert _prom_query(base, "fraudwatch_model_info == 1")
        assert _prom_query(base, 'up{job="fraudwatch"} == 1')
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def test_the_run_file_holding_the_admin_key_is_readable_by_its_owner_alone(stack: Stack) -> None:
    assert stat.S_IMODE((stack.home / "run.json").stat().st_mode) == 0o600


def test_logs_never_hold_phone_numbers_ips_or_device_ids(stack: Stack) -> None:
    metrics_url = stack.run["metrics_url"]
    wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total") == len(stack.sent),
             timeout_s=90, what="all transfers scored")  # fmt: skip
    secrets = {
        str(e[field]) for e in stack.sent for field in ("phone", "ip", "device_id") if e.get(field)
    }
    assert len(secrets) > 100
    logs = list(stack.home.rglob("*.log"))
    assert any(p.name == "worker.log" for p in logs)
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert '"event":"batch_done"' in text.replace(" ", "")
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []


def _call(stack: Stack, method: str, path: str, body: object = None) -> dict:
    request = urllib.request.Request(
        f"{stack.run['api_url']}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {stack.run['api_key']}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict = json.loads(response.read() or b"{}")
    return answer


def _produce(stack: Stack, events: list[dict], name: str) -> None:
    data = stack.home / name
    data.write_bytes(as_jsonl(events))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    env["FRAUDWATCH_HOME"] = str(stack.home)
    subprocess.run([sys.executable, "-m", "service.cli", "produce", str(data)], env=env,
                   check=True, capture_output=True)  # fmt: skip


def _mule_alerts(stack: Stack, mule: str) -> list[dict]:
    items = _call(stack, "GET", f"/v1/alerts?account={mule}&limit=500")["items"]
    return [a for a in items if a["suspect_account"] == mule]


def test_decisions_change_what_happens_next_on_the_running_stack(stack: Stack) -> None:
    """The decisions issue's targets on `fraudwatch up`: a confirmed fan-out mule is listed and
    payments to it are blocked; an ordinary payment goes ahead; listing an account flags its
    past transfers; a webhook receiver gets every created and updated alert, signed; a
    dismissed pattern stays quiet for its account until its evidence grows."""
    metrics_url = stack.run["metrics_url"]
    wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total") == len(stack.sent),
             timeout_s=90, what="all transfers scored")  # fmt: skip
    receiver = Receiver()
    try:
        hook = _call(stack, "POST", "/v1/webhooks",
                     {"url": receiver.url, "events": ["alert.created", "alert.updated"]})
        receiver.secret = hook["secret"]
        # Over a week after the stack's traffic began: whether a payee is new is known by then
        # (in a stack's first week of observation it is unknown, and the mule looks like less).
        later = T0 + timedelta(days=8)
        ring = fan_out_ring("e2e", start=later)
        _produce(stack, ring, "e2e.jsonl")
        wait_for(lambda: len(_mule_alerts(stack, "e2e-mule")) >= 5, timeout_s=60,
                 what="the new mule's alerts")  # fmt: skip

        # An ordinary payment goes ahead; once the mule is confirmed, payments to it stop.
        ordinary = event("e2e-probe-0", "e2e-someone", "e2e-grocer", later, "35.50")
        assert _call(stack, "POST", "/v1/screen", ordinary)["decision"] == "allow"
        alert = _mule_alerts(stack, "e2e-mule")[0]
        began = time.monotonic()
        done = _call(stack, "POST", f"/v1/alerts/{alert['alert_id']}/actions",
                     {"action": "confirm_fraud", "note": "mule confirmed"})  # fmt: skip
        assert done["consequences"]["listed"] == "e2e-mule", done
        payment = event("e2e-probe-1", "e2e-victim-2", "e2e-mule", later, "30000.00")
        wait_for(lambda: _call(stack, "POST", "/v1/screen", payment)["decision"] == "block",
                 timeout_s=5, what="payments to the confirmed mule blocked")  # fmt: skip
        print(f"\nconfirmed -> screening blocks: {time.monotonic() - began:.3f} s")

        # Listing an account that had transfers flags them (one of the ordinary traffic's).
        account = stack.sent[-1]["dst_account"]
        had = sum(account in (e["src_account"], e["dst_account"]) for e in stack.sent)
        listing = {"value": account, "source": "bank B", "reason": "mule"}
        listed = _call(stack, "POST", "/v1/watchlists/account", listing)
        assert 1 <= listed["retro_alerts"] <= had

        # The receiver got every alert created since it subscribed, and the update, signed.
        def delivered() -> bool:
            mine = {a["alert_id"] for a in _call(stack, "GET", "/v1/alerts?limit=500")["items"]
                    if a["transfer_id"].startswith("e2e")}  # fmt: skip
            updated = receiver.events("alert.updated").get(alert["alert_id"], {})
            return mine <= set(receiver.events("alert.created")) and (
                updated.get("status") == "confirmed")  # fmt: skip

        wait_for(delivered, timeout_s=30, what="every created and updated alert delivered")
        assert receiver.bad_signatures == 0

        # A dismissed pattern: quiet for its account until the evidence grows by half.
        split = fan_out_ring("e2d", payees=20, start=later + timedelta(hours=2))
        _produce(stack, split[:10], "e2d-1.jsonl")  # the victim's payment and 9 payees
        wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total")
                 >= len(stack.sent) + len(ring) + 10, timeout_s=60,
                 what="the second mule's first legs scored")  # fmt: skip
        raised = _mule_alerts(stack, "e2d-mule")
        assert raised
        case_id = raised[0]["case_id"]
        dismissed = _call(stack, "POST", f"/v1/cases/{case_id}/actions",
                          {"action": "dismiss", "note": "payroll of a new firm"})  # fmt: skip
        assert dismissed["consequences"]["suppressed"]
        time.sleep(2)  # workers pick up suppressions within FRAUDWATCH_WATCHLIST_REFRESH_S
        before = len(_mule_alerts(stack, "e2d-mule"))
        _produce(stack, split[10:12], "e2d-2.jsonl")  # payees 10 and 11: not half again of 9
        wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total")
                 >= len(stack.sent) + len(ring) + 12, timeout_s=60, what="scored")  # fmt: skip
        assert len(_mule_alerts(stack, "e2d-mule")) == before
        _produce(stack, split[12:], "e2d-3.jsonl")  # up to 19 payees: grown
        wait_for(lambda: len(_mule_alerts(stack, "e2d-mule")) > before, timeout_s=60,
                 what="the grown pattern alerts again")  # fmt: skip
        assert _metric(metrics_url, 'fraudwatch_suppressed_total{rule="fan_out_rapid"}') >= 2
    finally:
        receiver.server.shutdown()


def test_a_killed_worker_is_started_again_and_scores_what_follows(
    stack: Stack, tmp_path: Path
) -> None:
    """SIGKILL of the worker stops nothing else: `up` starts it again, the API keeps answering
    and transfers sent afterwards are scored."""
    metrics_url = stack.run["metrics_url"]
    wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total") >= len(stack.sent),
             timeout_s=90, what="all transfers scored")  # fmt: skip
    alerts = len(_api_alerts(stack))

    def workers() -> set[int]:
        return {pid for pid in _children(stack.proc.pid) if _alive(pid)
                and b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()}  # fmt: skip

    [killed] = workers()
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: bool(workers() - {killed}), timeout_s=30, what="a worker started again")
    later = background(seed=29, count=40)
    path = tmp_path / "later.jsonl"
    path.write_bytes(as_jsonl(later))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    env["FRAUDWATCH_HOME"] = str(stack.home)
    subprocess.run([sys.executable, "-m", "service.cli", "produce", str(path)], env=env,
                   check=True, capture_output=True)  # fmt: skip
    total = len(stack.sent) + len(later)
    wait_for(lambda: _metric(metrics_url, "fraudwatch_transfers_total") >= total,
             timeout_s=120, what="the later transfers scored")  # fmt: skip
    assert stack.proc.poll() is None
    assert len(_api_alerts(stack)) >= alerts
    assert "worker started again" in (stack.home / "up.log").read_text()


def test_ctrl_c_stops_everything_it_started(stack: Stack) -> None:
    children = _children(stack.proc.pid)
    assert len(children) >= 4  # broker, redis-server, worker, API
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert [pid for pid in children if _alive(pid)] == []
    assert not (stack.home / "run.json").exists()
