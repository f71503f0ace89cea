"""Who the caller is, and the vocabulary alerts are written in (any role).

The console asks these first: `/v1/me` decides what it shows, `/v1/glossary` turns evidence
keys into words and tells which workflow actions an alert's status allows."""

from __future__ import annotations

from fastapi import APIRouter, Request

from models import retro
from models.features import FEATURE_DESCRIPTIONS
from models.workflow import ACTIONS, MOVES
from rules.engine import RuleSet
from service.console_schemas import ActionMoveOut, GlossaryOut, MeOut, RuleTitleOut
from service.deps import CallerDep
from service.errors import error_responses

router = APIRouter(prefix="/v1", tags=["session"], responses=error_responses(401, 429, 503))


@router.get("/me", summary="The caller's key: id, name and role", response_model=MeOut)
def me(caller: CallerDep) -> MeOut:
    """Who the presented key says the caller is; any valid key may ask."""
    return MeOut(key_id=caller.key_id, name=caller.name, role=caller.role)


@router.get("/glossary", summary="Feature descriptions, rule titles, workflow moves",
            response_model=GlossaryOut)  # fmt: skip
def glossary(request: Request, _: CallerDep) -> GlossaryOut:
    """Plain-language descriptions of every feature (the keys of an alert's evidence), the
    titles of the rules in force, and each workflow action with the statuses it starts from."""
    rules: RuleSet | None = request.app.state.rules
    titles = [] if rules is None else sorted((r.id, r.title) for r in rules.rules)
    # Not a rule file: the alerts a new listing's retro-hunt raises (models/retro.py).
    titles.append((retro.RULE, retro.TITLE))
    return GlossaryOut(
        features=dict(FEATURE_DESCRIPTIONS),
        rules=[RuleTitleOut(id=rule_id, title=title) for rule_id, title in titles],
        actions=[
            ActionMoveOut.model_validate(
                {"action": a, "from": list(MOVES[a].sources), "to": MOVES[a].target}
            )
            for a in ACTIONS
        ],
    )
