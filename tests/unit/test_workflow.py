"""The alert workflow's moves, exactly as issue 5 lists them."""

from __future__ import annotations

import itertools

import pytest

from models.alerts import STATUSES
from models.workflow import ACTIONS, LABELS, MOVES, MoveRefused, allowed_actions

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
