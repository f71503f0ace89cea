"""The API process's watchlist view, built in the lifespan, as a dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streams.state.watchlists import WatchlistView


async def _watchlists(request: Request) -> WatchlistView:
    view: WatchlistView = request.app.state.watchlists
    return view


WatchlistViewDep = Annotated[WatchlistView, Depends(_watchlists)]
