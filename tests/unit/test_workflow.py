"""The alert workflow's moves, exactly as issue 5 lists them."""

from __future__ import annotations

import itertools

import pytest

from models.alerts import STATUSES
from models.workflow import (
    ACTIONS,
    LABELS,
    MOVES,
    MoveRefused,
    allowed_actions,
    four_eyes_refusal,
)

LEGAL = {
    ("escalate", "open"): "escalated",
    ("confirm_fraud", "open"): "confirmed",
    ("confirm_fraud", "escalated"): "confirmed",
    ("confirm_fraud", "appealed"): "confirmed",
    ("dismiss", "open"): "dismissed",
    ("dismiss", "escalated"): "dismissed",
    ("appeal", "confirmed"): "appealed",
    ("restore", "appealed"): "dismissed",
}


@pytest.mark.parametrize(("action", "status"), list(itertools.product(ACTIONS, STATUSES)))
def test_every_action_from_every_status(action: str, status: str) -> None:
    move = MOVES[action]  # type: ignore[index]
    legal = status in move.sources
    assert legal == ((action, status) in LEGAL)
    if legal:
        assert move.target == LEGAL[(action, status)]


def test_refusal_names_the_move_and_what_is_allowed() -> None:
    assert str(MoveRefused("appeal", "open")) == (
        "cannot 'appeal' an alert that is 'open'; allowed: escalate, confirm_fraud, dismiss"
    )
    assert allowed_actions("dismissed") == []
    assert str(MoveRefused("restore", "dismissed")).endswith("allowed: none")


def test_dispositions_are_labels() -> None:
    assert LABELS == {"confirmed": 1, "dismissed": 0}


def _entry(action: str, key_id: str) -> dict[str, object]:
    return {"action": action, "by": {"key_id": key_id, "name": key_id, "role": "investigator"}}


def test_four_eyes_the_key_that_confirmed_or_appealed_may_not_restore() -> None:
    history = [_entry("escalate", "k-esc"), _entry("confirm_fraud", "k-conf"),
               _entry("appeal", "k-appeal")]  # fmt: skip
    confirmer = four_eyes_refusal("restore", "k-conf", history)
    assert confirmer is not None and "confirm_fraud" in confirmer and "four-eyes" in confirmer
    assert four_eyes_refusal("restore", "k-appeal", history) is not None
    assert four_eyes_refusal("restore", "k-esc", history) is None
    assert four_eyes_refusal("restore", "k-other", history) is None
    # Only restoring is restricted; a damaged history entry is no obstacle.
    assert four_eyes_refusal("confirm_fraud", "k-conf", history) is None
    assert four_eyes_refusal("restore", "k-conf", [{"action": "confirm_fraud", "by": "x"}]) is None
