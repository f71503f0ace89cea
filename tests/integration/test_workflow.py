"""The alert workflow on a real Redis: every legal path, every illegal move, history, labels."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from models.alerts import STATUSES
from models.cases import STATUS_ORDER
from models.workflow import ACTIONS, MOVES
from service.app import create_app
from streams.batch import BatchOutcome
from streams.state.alert_events import DEFAULT_MAX_EVENTS, EVENTS_KEY
from streams.state.alert_store import AlertStore, alert_key, history_key, index_key
from streams.state.case_store import ALERT_CASES
from streams.state.dispositions import iter_labelled_features
from tests.integration.keyed_api import ADMIN, api_settings, key_for, score_ring


@pytest.fixture
def scored(
    services, redis_client: redis.Redis, tmp_path
) -> Iterator[tuple[TestClient, dict[str, str], BatchOutcome]]:
    """The API, an investigator's headers and the ring's alerts (all `open`)."""
    settings = api_settings(services, tmp_path)
    outcome = score_ring(settings, redis_client)
    assert len(outcome.new_alerts) >= 5
    with TestClient(create_app(settings)) as api:
        yield api, key_for(api, "investigator", "desk 3"), outcome


def _act(api: TestClient, headers: dict, alert_id: str, action: str, note: str = "checked"):
    return api.post(f"/v1/alerts/{alert_id}/actions", json={"action": action, "note": note},
                    headers=headers)  # fmt: skip


PATHS = {
    "confirm, appeal, appeal rejected": (["escalate", "confirm_fraud", "appeal", "confirm_fraud"],
                                          "confirmed"),
    "false positive": (["dismiss"], "dismissed"),
    "escalated then dismissed": (["escalate", "dismiss"], "dismissed"),
    "appeal upheld": (["confirm_fraud", "appeal", "restore"], "dismissed"),
}  # fmt: skip


def test_legal_paths_record_history_and_move_indexes(scored, redis_client) -> None:
    api, desk, outcome = scored
    for (actions, final), alert in zip(PATHS.values(), outcome.new_alerts, strict=False):
        status = "open"
        for step, action in enumerate(actions):
            response = _act(api, desk, alert.alert_id, action, f"step {step}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["entry"]["from"] == status
            status = MOVES[action].target  # type: ignore[index]  # an Action, by the parameters
            assert body["alert"]["status"] == body["entry"]["to"] == status
        assert status == final
        history = api.get(f"/v1/alerts/{alert.alert_id}/history", headers=desk).json()
        assert [e["action"] for e in history["items"]] == actions
        assert [e["note"] for e in history["items"]] == [f"step {i}" for i in range(len(actions))]
        assert history["items"][0]["by"] == {
            "key_id": history["items"][0]["by"]["key_id"], "name": "desk 3", "role": "investigator"
        }  # fmt: skip
        for candidate in STATUSES:
            member = redis_client.zscore(index_key("status", candidate), alert.alert_id)
            assert (member is not None) == (candidate == final)
        listed = api.get("/v1/alerts", params={"status": final}, headers=desk).json()["items"]
        assert alert.alert_id in {a["alert_id"] for a in listed}


def test_illegal_moves_are_409_and_change_nothing(scored) -> None:
    api, desk, outcome = scored
    reach = {"open": [], "escalated": ["escalate"], "confirmed": ["confirm_fraud"],
             "appealed": ["confirm_fraud", "appeal"], "dismissed": ["dismiss"]}  # fmt: skip
    for (status, steps), alert in zip(reach.items(), outcome.new_alerts, strict=False):
        for action in steps:
            assert _act(api, desk, alert.alert_id, action).status_code == 200
        before = api.get(f"/v1/alerts/{alert.alert_id}/history", headers=desk).json()
        for action in ACTIONS:
            if status in MOVES[action].sources:
                continue
            response = _act(api, desk, alert.alert_id, action)
            assert response.status_code == 409
            assert response.json()["error"] == "conflict"
            assert f"cannot '{action}' an alert that is '{status}'" in response.json()["detail"]
        assert api.get(f"/v1/alerts/{alert.alert_id}", headers=desk).json()["status"] == status
        assert api.get(f"/v1/alerts/{alert.alert_id}/history", headers=desk).json() == before


def test_bad_requests(scored) -> None:
    api, desk, outcome = scored
    alert_id = outcome.new_alerts[0].alert_id
    assert _act(api, desk, alert_id, "escalate", "").status_code == 422
    blank = _act(api, desk, alert_id, "escalate", " \t\n ")  # no reason given
    assert blank.status_code == 422 and blank.json()["detail"][0]["parameter"] == "note"
    assert _act(api, desk, alert_id, "escalate", "x" * 2001).status_code == 422
    assert _act(api, desk, alert_id, "freeze").status_code == 422
    missing = _act(api, desk, "al_000000000000000000000000", "escalate")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (
        api.get("/v1/alerts/al_000000000000000000000000/history", headers=ADMIN).status_code == 404
    )


def test_replayed_alert_keeps_its_status_and_dispositions_become_labels(
    scored, redis_client
) -> None:
    api, desk, outcome = scored
    confirmed, dismissed = outcome.new_alerts[:2]
    assert _act(api, desk, confirmed.alert_id, "confirm_fraud").status_code == 200
    assert _act(api, desk, dismissed.alert_id, "dismiss").status_code == 200
    features = dict(zip((t.transfer_id for t in outcome.transfers), outcome.features, strict=True))
    replay = AlertStore(redis_client).put_alerts(
        outcome.alerts, [features[a.transfer_id] for a in outcome.alerts]
    )
    assert not any(kept.new for kept in replay)
    kept_status = {kept.alert.alert_id: kept.alert.status for kept in replay}
    assert kept_status[confirmed.alert_id] == "confirmed"
    assert kept_status[dismissed.alert_id] == "dismissed"
    confirmed_now = AlertStore(redis_client).get(confirmed.alert_id)
    assert confirmed_now is not None and confirmed_now.status == "confirmed"
    rows = {alert_id: (vector, label) for vector, label, alert_id in
            iter_labelled_features(redis_client)}  # fmt: skip
    assert {alert_id: label for alert_id, (_, label) in rows.items()} == {
        confirmed.alert_id: 1,
        dismissed.alert_id: 0,
    }
    stored, expected = rows[confirmed.alert_id][0], features[confirmed.transfer_id]
    assert stored.keys() == expected.keys()
    assert all(
        stored[name] == value or (math.isnan(stored[name]) and math.isnan(value))
        for name, value in expected.items()
    )


def test_four_eyes_the_key_that_confirmed_or_appealed_cannot_restore(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    settings = api_settings(services, tmp_path, four_eyes=True)
    outcome = score_ring(settings, redis_client)
    first, second = outcome.new_alerts[:2]
    with TestClient(create_app(settings)) as api:
        confirmer, appellant, third = (key_for(api, "investigator", n) for n in ("a", "b", "c"))
        for alert in (first, second):
            assert _act(api, confirmer, alert.alert_id, "confirm_fraud").status_code == 200
            assert _act(api, appellant, alert.alert_id, "appeal").status_code == 200
        for barred, action in ((confirmer, "confirm_fraud"), (appellant, "appeal")):
            refused = _act(api, barred, first.alert_id, "restore")
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "forbidden"
            assert "four-eyes" in refused.json()["detail"] and action in refused.json()["detail"]
        assert api.get(f"/v1/alerts/{first.alert_id}", headers=third).json()["status"] == (
            "appealed"
        )
        assert _act(api, third, first.alert_id, "restore").status_code == 200
    # Switched off (the development default), one key may do it all.
    relaxed = settings.model_copy(update={"four_eyes": False})
    with TestClient(create_app(relaxed)) as api:
        assert _act(api, confirmer, second.alert_id, "restore").status_code == 200


def test_a_move_judged_on_a_history_that_has_since_grown_is_not_applied(
    scored, redis_client: redis.Redis
) -> None:
    """The four-eyes check reads the history, then the function applies the move only if the
    history is still that long: a decision slipped in between makes it judge again."""
    api, desk, outcome = scored
    alert_id = outcome.new_alerts[0].alert_id
    assert _act(api, desk, alert_id, "escalate").status_code == 200
    store = AlertStore(redis_client)

    def act(keys: list[str], args: list[str]) -> list[object]:
        reply: list[object] = store._call("alert_action", keys, args)
        return reply

    keys = [alert_key(alert_id), history_key(alert_id)]
    keys += [index_key("status", status) for status in STATUSES]
    keys += [EVENTS_KEY, ALERT_CASES]
    args = [alert_id, "dismiss", "dismissed", "open escalated", "k", "n", "investigator",
            "2026-12-06T00:00:00Z", " ".join(STATUSES), "note"]  # fmt: skip
    tail = [str(DEFAULT_MAX_EVENTS), "fw:{al}", " ".join(STATUS_ORDER)]
    assert act(keys=keys, args=[*args, "0", *tail]) == [-2]  # judged on an empty history: stale
    assert redis_client.llen(history_key(alert_id)) == 1
    assert act(keys=keys, args=[*args, "1", *tail])[0] == 1
