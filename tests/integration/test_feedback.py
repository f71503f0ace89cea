"""Decisions that change what happens next, on a real Redis: a confirmed mule is listed and
payments to it are blocked, an upheld appeal lifts the listing, a dismissed pattern stays quiet
for its account until its evidence grows, and a new listing flags the account's past."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from models.events import parse_transfer
from service import wiring
from service.app import create_app
from service.settings import Settings
from streams.batch import BatchProcessor, Message
from tests.integration.keyed_api import ADMIN, api_settings, key_for, score_ring
from tests.traffic import T0, event, fan_out_ring


@pytest.fixture
def settings(services, tmp_path) -> Settings:
    return api_settings(services, tmp_path, rate_limit_per_minute=0, watchlist_refresh_s=0.0)


@pytest.fixture
def api(settings: Settings, redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _act(api: TestClient, alert_id: str, action: str) -> dict:
    response = api.post(f"/v1/alerts/{alert_id}/actions", headers=ADMIN,
                        json={"action": action, "note": f"{action}: checked"})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def _screen(api: TestClient, src: str, dst: str, amount: str = "3000.00") -> dict:
    probe = event(f"probe-{src}-{dst}", src, dst, T0 + timedelta(hours=2), amount)
    response = api.post("/v1/screen", json=probe, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def _alerts(api: TestClient, **params: str) -> list[dict]:
    return api.get("/v1/alerts", params={**params, "limit": 500}, headers=ADMIN).json()["items"]


def test_a_confirmed_fan_out_mule_is_listed_and_payments_to_it_are_blocked(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    outcome = score_ring(settings, redis_client)
    fan_out = [a for a in outcome.new_alerts if a.suspect_account == "ring-mule"]
    assert fan_out, [a.suspect_account for a in outcome.new_alerts]
    assert _screen(api, "next-victim", "ring-mule")["decision"] != "block"

    done = _act(api, fan_out[0].alert_id, "confirm_fraud")
    assert done["consequences"]["listed"] == "ring-mule"
    # Its past transfers that had not alerted (the victim's payment in, the first legs out).
    assert done["consequences"]["retro_alerts"] >= 1
    screened = _screen(api, "next-victim", "ring-mule")
    assert screened["decision"] == "block"
    assert screened["warning"]["code"] == "payee_reported"
    assert _screen(api, "someone", "a-grocer", "35.50")["decision"] == "allow"

    risk = api.get("/v1/accounts/ring-mule/risk", headers=ADMIN).json()
    assert risk["risk_level"] == "critical"
    assert risk["listing"]["source"] == "investigation"
    assert fan_out[0].alert_id in risk["listing"]["reason"]
    # One hop out: whoever the mule paid now shows the listed neighbour.
    neighbour = api.get("/v1/accounts/ring-layer2-0/risk", headers=ADMIN).json()
    assert "watchlist_neighbour" in {r["code"] for r in neighbour["reasons"]}

    retro = _alerts(api, rule="watchlist_retro")
    assert len(retro) == done["consequences"]["retro_alerts"]
    assert {a["suspect_account"] for a in retro} == {"ring-mule"}
    assert "ring-in" in {a["transfer_id"] for a in retro}
    # Confirming another alert of the same mule lists nothing twice.
    again = _act(api, fan_out[1].alert_id, "confirm_fraud")["consequences"]
    assert (again["listed"], again["retro_alerts"]) == (None, 0)


def test_an_upheld_appeal_lifts_the_listing_once_nothing_confirms_it(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    outcome = score_ring(settings, redis_client)
    first, second = [a for a in outcome.new_alerts if a.suspect_account == "ring-mule"][:2]
    assert _act(api, first.alert_id, "confirm_fraud")["consequences"]["listed"] == "ring-mule"
    _act(api, second.alert_id, "confirm_fraud")
    _act(api, first.alert_id, "appeal")
    # Another alert still confirms the mule: the listing stays.
    assert _act(api, first.alert_id, "restore")["consequences"]["unlisted"] is None
    assert _screen(api, "next-victim", "ring-mule")["decision"] == "block"
    _act(api, second.alert_id, "appeal")
    retro = {a["alert_id"] for a in _alerts(api, rule="watchlist_retro")}
    assert retro
    done = _act(api, second.alert_id, "restore")["consequences"]
    assert done["unlisted"] == "ring-mule"
    assert _screen(api, "next-victim", "ring-mule")["decision"] != "block"
    risk = api.get("/v1/accounts/ring-mule/risk", headers=ADMIN).json()
    assert risk["listing"] is None
    # The alerts the listing's retro-hunt raised said only "since listed": withdrawn with it,
    # by the system, so they no longer hold the customer at high risk.
    assert done["withdrawn_alerts"] == len(retro)
    for alert_id in retro:
        [entry] = api.get(f"/v1/alerts/{alert_id}/history", headers=ADMIN).json()["items"]
        assert (entry["to"], entry["by"]["role"]) == ("dismissed", "system")
        assert second.alert_id in entry["note"]
    assert not any("since been listed" in r["text"] for r in risk["reasons"])
    # The listing and its lifting are in the audit log, with the decisions that made them.
    audited = [e["resource"] for e in api.get("/v1/audit", headers=ADMIN).json()["items"]]
    added = f"watchlist account: entry added (ring-mule) by confirm_fraud on alert {first.alert_id}"
    assert added in audited
    assert (f"watchlist account: entry removed (ring-mule) by restore on alert {second.alert_id}"
            in audited)  # fmt: skip


def test_an_outside_listing_is_neither_replaced_nor_lifted_by_a_decision(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    listing = {"value": "ring-mule", "source": "police notice 11", "reason": "collection account"}
    assert api.post("/v1/watchlists/account", json=listing, headers=ADMIN).status_code == 201
    outcome = score_ring(settings, redis_client)
    alert = next(a for a in outcome.new_alerts if a.suspect_account == "ring-mule")
    assert _act(api, alert.alert_id, "confirm_fraud")["consequences"]["listed"] is None
    _act(api, alert.alert_id, "appeal")
    assert _act(api, alert.alert_id, "restore")["consequences"]["unlisted"] is None
    risk = api.get("/v1/accounts/ring-mule/risk", headers=ADMIN).json()
    assert risk["listing"]["source"] == "police notice 11"


def test_a_dismissal_never_silences_a_listed_party(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    """A listing is outside knowledge, not a pattern: dismissing (or restoring) an alert of a
    listed payer suppresses none of its watchlist reasons, and the payer's next transfer
    alerts, as screening says it would."""
    listing = {"value": "listed-payer", "source": "police notice 12", "reason": "mule"}
    assert api.post("/v1/watchlists/account", json=listing, headers=ADMIN).status_code == 201
    processor = BatchProcessor(
        wiring.redis_state_store(settings, redis_client),
        wiring.alert_store(settings, redis_client),
        wiring.build_scorer(settings),
        watchlists=wiring.watchlist_view(settings, redis_client),
        suppressions=wiring.suppression_view(settings, redis_client),
    )
    payments = [json.dumps(event(f"listed-{i}", "listed-payer", f"payee-{i}",
                                 T0 + timedelta(hours=i), "5000.00")).encode()
                for i in range(2)]  # fmt: skip
    [first] = processor.process([Message("transfer", "transfers", 0, 0, payments[0])]).new_alerts
    listed = next(r for r in first.reasons if r.rule == "watchlist_payer")
    # The investigator sees which party is listed: the payer's account, not its device.
    assert (listed.evidence["src_watchlisted"], listed.evidence["device_watchlisted"]) == (1, 0)
    done = _act(api, first.alert_id, "dismiss")["consequences"]
    assert "watchlist_payer" not in done["suppressed"]
    assert _screen(api, "listed-payer", "payee-9")["decision"] != "allow"
    outcome = processor.process([Message("transfer", "transfers", 0, 1, payments[1])])
    assert [a.transfer_id for a in outcome.new_alerts] == ["listed-1"]
    assert outcome.suppressed == []


def _legs(first: int, last: int) -> list[bytes]:
    """Legs `first`..`last` (1-based) of one mule's fan-out: the n-th pays its n-th payee."""
    ring = fan_out_ring("fan", payees=20)[2:]  # after the ordinary history and the victim
    return [json.dumps(e).encode() for e in ring[first - 1 : last]]


def test_a_dismissed_pattern_stays_quiet_for_its_account_until_the_evidence_grows(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    processor = BatchProcessor(
        wiring.redis_state_store(settings, redis_client),
        wiring.alert_store(settings, redis_client),
        wiring.build_scorer(settings),
        suppressions=wiring.suppression_view(settings, redis_client),
    )

    def score(values: list[bytes]) -> tuple[list[str], list[str]]:
        """The transfers that alerted, and those suppressed."""
        messages = [Message("transfer", "transfers", 0, i, v) for i, v in enumerate(values)]
        outcome = processor.process(messages)
        alerted = [a.transfer_id for a in outcome.new_alerts]
        return alerted, [hit.transfer_id for hit in outcome.suppressed]

    # An ordinary payment a week earlier (observation warm), then the victim's payment.
    victim = [json.dumps(e).encode() for e in fan_out_ring("fan", payees=20)[:2]]
    raised, _ = score(victim + _legs(1, 8))
    assert raised[-1] == "fan-out-7"  # the 8th payee in an hour
    dismissed = next(a for a in _alerts(api) if a["transfer_id"] == raised[-1])
    evidence = next(r["evidence"] for r in dismissed["reasons"] if r["rule"] == "fan_out_rapid")
    assert evidence["src_distinct_payees_1h"] == 8
    suppressed = set(_act(api, dismissed["alert_id"], "dismiss")["consequences"]["suppressed"])
    assert "fan_out_rapid" in suppressed

    # Payees 9-11: the same pattern, not grown by half: no alert.
    assert score(_legs(9, 11)) == ([], ["fan-out-8", "fan-out-9", "fan-out-10"])
    # The 12th payee in the hour is half again the 8 dismissed: it alerts.
    assert score(_legs(12, 12)) == (["fan-out-11"], [])

    view = api.get("/v1/accounts/fan-mule/risk", headers=ADMIN).json()["suppression"]
    assert {r["rule"] for r in view["rules"]} == suppressed
    assert view["suppressed_hits"] == 3
    assert [h["transfer_id"] for h in view["latest_hits"]] == ["fan-out-10", "fan-out-9",
                                                               "fan-out-8"]  # fmt: skip
    # A bank key sees the account's risk, not investigators' suppressions.
    bank = key_for(api, "bank")
    assert api.get("/v1/accounts/fan-mule/risk", headers=bank).json()["suppression"] is None


def test_listing_an_account_flags_its_past_transfers_once(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    history = [event(f"past-{i}", f"payer-{i}", "quiet-collector", T0 + timedelta(minutes=i),
                     "400.00") for i in range(4)]  # fmt: skip
    history.append(event("past-out", "quiet-collector", "cash-out", T0 + timedelta(hours=1),
                         "1500.00"))  # fmt: skip
    state = wiring.redis_state_store(settings, redis_client)
    state.apply_transfers([parse_transfer(json.dumps(e).encode()) for e in history])
    assert _alerts(api) == []
    listing = {"value": "quiet-collector", "source": "anti-fraud centre", "reason": "mule"}
    added = api.post("/v1/watchlists/account", json=listing, headers=ADMIN)
    assert added.status_code == 201 and added.json()["retro_alerts"] == 5
    retro = {a["transfer_id"]: a for a in _alerts(api, rule="watchlist_retro")}
    assert set(retro) == {e["transfer_id"] for e in history}
    assert retro["past-out"]["reasons"][0]["suspect"] == "payer"
    assert retro["past-0"]["suspect_account"] == "quiet-collector"
    assert retro["past-0"]["amount"] == "400.00" and retro["past-0"]["currency"] == "CNY"
    again = api.post("/v1/watchlists/account", json=listing, headers=ADMIN)
    assert again.status_code == 200 and again.json()["retro_alerts"] == 0
    # A CSV import hunts too (a second import of the same file flags nothing new).
    csv = "kind,value,source,reason,expires_at\naccount,cash-out,bank B,cash-out mule,\n"
    imported = api.post("/v1/watchlists/import", content=csv, headers=ADMIN).json()
    assert imported["retro_alerts"] == 0  # its one transfer alerted when its payer was listed
    csv2 = "kind,value,source,reason,expires_at\naccount,payer-2,bank B,mule,\n"
    assert api.post("/v1/watchlists/import", content=csv2, headers=ADMIN).json() == {
        "imported": 1, "new": 1, "replaced": 0, "errors": [], "retro_alerts": 0
    }  # fmt: skip
