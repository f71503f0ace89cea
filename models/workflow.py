"""The alert workflow: which action moves an alert from which status to which. Pure: no I/O.

    escalate       open → escalated
    confirm_fraud  open | escalated → confirmed; appealed → confirmed (appeal rejected)
    dismiss        open | escalated → dismissed (a false positive)
    appeal         confirmed → appealed (the customer contests the restriction)
    restore        appealed → dismissed (appeal upheld, restrictions lifted)

Confirmed and dismissed alerts are an investigator's disposition: training labels 1 and 0.

Under the four-eyes rule (a setting, on by default in production) the key that confirmed an
alert, or that appealed it, may not also restore it: lifting a restriction takes a second
person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Action = Literal["escalate", "confirm_fraud", "dismiss", "appeal", "restore"]
ACTIONS: tuple[Action, ...] = ("escalate", "confirm_fraud", "dismiss", "appeal", "restore")


@dataclass(frozen=True, slots=True)
class Move:
    """One action: the statuses it may start from and the status it leads to."""

    action: Action
    sources: tuple[str, ...]
    target: str


MOVES: dict[Action, Move] = {
    move.action: move
    for move in (
        Move("escalate", ("open",), "escalated"),
        Move("confirm_fraud", ("open", "escalated", "appealed"), "confirmed"),
        Move("dismiss", ("open", "escalated"), "dismissed"),
        Move("appeal", ("confirmed",), "appealed"),
        Move("restore", ("appealed",), "dismissed"),
    )
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who took an action: the API key's id and name, and its role."""

    key_id: str
    name: str
    role: str


LABELS: dict[str, int] = {"confirmed": 1, "dismissed": 0}


def allowed_actions(status: str) -> list[Action]:
    """The actions an alert in `status` accepts, in workflow order."""
    return [action for action in ACTIONS if status in MOVES[action].sources]


def refusal(action: str, status: str) -> str:
    """Why `action` is not allowed on an alert in `status`, in words an investigator reads."""
    allowed = ", ".join(allowed_actions(status)) or "none"
    return f"cannot '{action}' an alert that is '{status}'; allowed: {allowed}"


class MoveRefused(Exception):
    """An action the alert's current status does not allow."""

    def __init__(self, action: str, status: str) -> None:
        super().__init__(refusal(action, status))
        self.action = action
        self.status = status


# Under the four-eyes rule, whoever took one of these on an alert may not restore it.
FOUR_EYES: dict[Action, tuple[Action, ...]] = {"restore": ("confirm_fraud", "appeal")}


def four_eyes_refusal(
    action: str, key_id: str, history: Iterable[Mapping[str, Any]]
) -> str | None:
    """Why the four-eyes rule forbids key `key_id` to take `action` on an alert with this
    history (its workflow entries), or None when it does not."""
    barred = FOUR_EYES.get(action, ())  # type: ignore[call-overload]
    for entry in history:
        by = entry.get("by")
        if entry.get("action") in barred and isinstance(by, Mapping) and by.get("key_id") == key_id:
            return (
                f"four-eyes rule: this key took '{entry['action']}' on the alert, so another "
                f"key must '{action}' it"
            )
    return None


class FourEyesRefused(Exception):
    """An action the four-eyes rule forbids to this key on this alert."""
