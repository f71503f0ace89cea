"""The rule library in force, and reloading it without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rules import RuleLibraryError, RuleProblem, RuleSet
from service import wiring
from service.auth import Caller
from service.deps import AuditLogDep, RedisDep, SettingsDep, require
from service.errors import KEYED, ErrorOut, Unavailable
from service.schemas import RuleLibraryOut, RuleOut, RuleReloadOut
from streams.rules_reload import bump_generation

router = APIRouter(prefix="/v1/rules", tags=["rules"], responses=KEYED)
Analyst = Annotated[Caller, Depends(require("analyst"))]
Admin = Annotated[Caller, Depends(require())]

INVALID_LIBRARY_EXAMPLE = {
    "error": "invalid_rule_library",
    "detail": "rule library has 1 problem; the running rules and policy stay in force",
    "problems": [{"file": "fan_out_rapid.yaml", "line": 7, "field": "when.all[0].feature",
                  "message": "unknown feature 'src_payees_1h'"}],
}  # fmt: skip


class RuleProblemOut(BaseModel):
    """One problem of the rule library or the screening policy."""

    file: str = Field(description="the file, named within the rules directory")
    line: int | None
    field: str = Field(description="where in the file, e.g. `when.all[0].feature`")
    message: str


class RuleLibraryErrorOut(ErrorOut):
    """A reload refused: every problem found, the running rules and policy unchanged."""

    problems: list[RuleProblemOut]


def _rule_list(rules: RuleSet) -> list[RuleOut]:
    return [
        RuleOut(id=r.id, version=r.version, title=r.title, score=r.score)
        for r in sorted(rules.rules, key=lambda rule: rule.id)
    ]


def _problem(problem: RuleProblem, rules_dir: Path) -> dict[str, Any]:
    # Named within the library, or by its own name (the policy): no server paths.
    file = (
        problem.file.relative_to(rules_dir)
        if problem.file.is_relative_to(rules_dir)
        else Path(problem.file.name)
    )
    return {"file": str(file), "line": problem.line, "field": problem.field,
            "message": problem.message}  # fmt: skip


@router.get("", summary="The rules in force", response_model=RuleLibraryOut)
def list_rules(request: Request, _: Analyst) -> RuleLibraryOut:
    """Ids, versions and titles of the rules this API process holds, and their fingerprint
    (workers log theirs and export it as `fraudwatch_rules_info{fingerprint}`)."""
    rules: RuleSet | None = request.app.state.rules
    if rules is None:
        raise Unavailable("the rule library did not load; fix it and POST /v1/rules/reload")
    return RuleLibraryOut(fingerprint=rules.fingerprint, rules=_rule_list(rules))


@router.post(
    "/reload",
    summary="Reload the rule library everywhere",
    response_model=RuleReloadOut,
    responses={422: {"model": RuleLibraryErrorOut,
                     "description": "The library is invalid; nothing changed",
                     "content": {"application/json": {"example": INVALID_LIBRARY_EXAMPLE}}}},
)  # fmt: skip
def reload_rules(
    request: Request, caller: Admin, settings: SettingsDep, client: RedisDep, audit: AuditLogDep
) -> RuleReloadOut | JSONResponse:
    """Validate the rule directory whole, and the screening policy against it; if both are
    valid, put them in force here and tell every worker (they reload their own directory
    between batches, within about a second). If not, 422 lists every problem with file, line
    and field, and the running rules and policy stay in force."""
    try:
        rules = wiring.load_rules(settings)
        policy = wiring.load_policy(settings, rules)
    except RuleLibraryError as error:
        count = len(error.problems)
        return JSONResponse(
            {
                "error": "invalid_rule_library",
                "detail": f"{error.what} has {count} "
                f"problem{'s' if count != 1 else ''}; the running rules and policy stay in force",
                "problems": [_problem(p, settings.rules_dir) for p in error.problems],
            },
            status_code=422,
        )
    request.app.state.rules = rules
    request.app.state.policy = policy
    scorer = getattr(request.app.state, "scorer", None)  # the screening scorer
    if scorer is None:
        request.app.state.scorer = wiring.build_scorer(settings, rules)
    else:
        scorer.rules = rules
    generation = bump_generation(client)
    audit.append(caller, request.method, request.url.path, f"rules {rules.fingerprint}")
    return RuleReloadOut(
        fingerprint=rules.fingerprint, rules=_rule_list(rules), generation=generation
    )
