"""The API process's watchlist view and scorer, built in the lifespan, as dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from models.scorer import Scorer
from service.errors import Unavailable
from streams.state.watchlists import WatchlistView


async def _watchlists(request: Request) -> WatchlistView:
    view: WatchlistView = request.app.state.watchlists
    return view


async def _scorer(request: Request) -> Scorer:
    scorer: Scorer | None = getattr(request.app.state, "scorer", None)
    if scorer is None:
        raise Unavailable("the rule library did not load; see /readyz")
    return scorer


WatchlistViewDep = Annotated[WatchlistView, Depends(_watchlists)]
ScorerDep = Annotated[Scorer, Depends(_scorer)]
