"""Rule reload on a running worker: a broken library changes nothing, a valid one takes over
between batches and fires on the next event."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.app import create_app
from service.settings import DEFAULT_POLICY_PATH, DEFAULT_RULES_DIR
from streams.worker import Worker, WorkerOptions
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicSet
from tests.integration.harness import produce, wait_for, worker_thread
from tests.traffic import T0, event

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
BROKEN = """id: broken_rule
version: 1
title: A broken rule
description: names a feature that does not exist
when:
  all:
    - feature: amount_major
      gte: 5
suspect: payer
score: 0.9
# A floor, so the new rule alerts on its own whatever the model makes of the transfer.
floor: 0.9
evidence: [amount_minor]
"""
HUGE_TRANSFER = """id: huge_transfer
version: 1
title: A transfer of 50 million or more
description: one transfer this large is always worth a look
when:
  all:
    - feature: amount_minor
      gte: 5000000000
suspect: payer
score: 0.9
# A floor, so the new rule alerts on its own whatever the model makes of the transfer.
floor: 0.9
evidence: [amount_minor]
"""


def test_broken_library_keeps_old_rules_and_valid_one_takes_over(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory, tmp_path
) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules_dir)
    settings = settings_for(topics, rules_dir=rules_dir, rules_check_seconds=0.2)
    with worker_thread(settings) as worker, TestClient(create_app(settings)) as api:
        scorer = worker.processor.scorer
        old = scorer.rules.fingerprint
        assert api.get("/v1/rules", headers=AUTH).json()["fingerprint"] == old

        (rules_dir / "broken.yaml").write_text(BROKEN)
        rejected = api.post("/v1/rules/reload", headers=AUTH)
        assert rejected.status_code == 422
        assert rejected.json()["problems"] == [
            {"file": "broken.yaml", "line": 7, "field": "when.all[0].feature",
             "message": "unknown feature 'amount_major' (did you mean 'amount_minor'?)"}
        ]  # fmt: skip
        assert worker.reloader is not None
        worker.reloader.request()  # SIGHUP's path: the worker's own load fails too
        time.sleep(1.0)
        assert scorer.rules.fingerprint == old
        assert api.get("/v1/rules", headers=AUTH).json()["fingerprint"] == old

        (rules_dir / "broken.yaml").unlink()
        (rules_dir / "huge_transfer.yaml").write_text(HUGE_TRANSFER)
        accepted = api.post("/v1/rules/reload", headers=AUTH)
        assert accepted.status_code == 200, accepted.text
        new = accepted.json()["fingerprint"]
        assert new != old and "huge_transfer" in {r["id"] for r in accepted.json()["rules"]}
        wait_for(lambda: scorer.rules.fingerprint == new, timeout_s=10, what="worker reload")
        assert REGISTRY.get_sample_value("fraudwatch_rules_info", {"fingerprint": new}) == 1
        assert REGISTRY.get_sample_value("fraudwatch_rules_info", {"fingerprint": old}) == 0

        probe = event("huge-0", "payer-0", "payee-0", T0, "60000000.00")
        screened = api.post("/v1/screen", headers=AUTH, json=probe)
        assert "huge_transfer" in {r["rule"] for r in screened.json()["reasons"]}

        huge = event("huge-1", "payer-1", "payee-1", T0, "60000000.00")
        produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(huge).encode()])

        def fired() -> bool:
            page = api.get("/v1/alerts", params={"rule": "huge_transfer"}, headers=AUTH).json()
            return [a["transfer_id"] for a in page["items"]] == ["huge-1"]

        wait_for(fired, timeout_s=30, what="an alert from the reloaded rule")


class _Reloader:
    requested = False

    def request(self) -> None:
        self.requested = True


def test_sighup_asks_the_worker_to_reload() -> None:
    reloader = _Reloader()
    options = WorkerOptions("transfers", "accounts", "alerts", "transfers.dlq")
    worker = Worker(None, None, None, options, reloader=reloader)  # type: ignore[arg-type]
    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    }
    try:
        worker.install_signal_handlers()
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: reloader.requested, timeout_s=2, what="SIGHUP handled")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)



def test_the_screening_policy_reloads_with_the_rules_and_a_bad_one_changes_nothing(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory, tmp_path
) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copy(DEFAULT_POLICY_PATH, policy)
    settings = settings_for(topics, policy_path=policy)
    probe = event("pol-1", "payer-p", "payee-p", T0, "10.00")
    with TestClient(create_app(settings)) as api:
        assert api.post("/v1/screen", headers=AUTH, json=probe).json()["decision"] == "allow"
        shipped = policy.read_text(encoding="utf-8")
        policy.write_text(shipped.replace("listed_payee: block", "listed_payee: shrug"))
        rejected = api.post("/v1/rules/reload", headers=AUTH)
        assert rejected.status_code == 422
        assert rejected.json()["detail"].startswith("screening policy has 1 problem")
        (problem,) = rejected.json()["problems"]
        assert (problem["file"], problem["field"]) == ("policy.yaml", "listed_payee")
        assert api.post("/v1/screen", headers=AUTH, json=probe).json()["decision"] == "allow"

        # Warn on everything: every score reaches the (ordinary and vulnerable) warn band.
        policy.write_text(shipped.replace("warn: 0.4", "warn: 0.0").replace("warn: 0.25",
                                                                             "warn: 0.0"))
        assert api.post("/v1/rules/reload", headers=AUTH).status_code == 200
        screened = api.post("/v1/screen", headers=AUTH, json=probe).json()
        assert screened["decision"] == "warn"
        assert screened["warning"]["code"] == "unusual_payment"
