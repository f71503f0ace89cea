"""Follow the money, on an in-memory edge list: layers, time order, window, hops, limits."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from models.features import MS_PER_HOUR, MS_PER_MINUTE
from models.trace import Edge, FetchLayer, follow, parse_window_ms

M = MS_PER_MINUTE
ROOT = Edge("t0", "victim", "mule1", 5_000_000, 0)
EDGES = [
    ROOT,
    Edge("t1", "mule1", "mule2a", 2_400_000, 5 * M),
    Edge("t2", "mule1", "mule2b", 2_400_000, 6 * M),
    Edge("t3", "mule2a", "cash1", 2_300_000, 20 * M),
    Edge("t4", "mule2b", "cash2", 2_300_000, 25 * M),
    # Left mule2b before the victim's money arrived: not part of this flow.
    Edge("t5", "mule2b", "old", 100_000, 5 * M),
    Edge("t6", "victim", "grocer", 10_000, 30 * M),
    Edge("t7", "cash1", "far", 100_000, 80 * M),
    Edge("t8", "cash2", "late", 100_000, 5 * MS_PER_HOUR),
    Edge("t9", "someone", "mule1", 7_000, -10 * M),
]


def fetcher(direction: str, edges: list[Edge] = EDGES) -> FetchLayer:
    def fetch(ranges: Mapping[str, tuple[int, int]], limit: int) -> dict[str, list[Edge]]:
        side = "src" if direction == "down" else "dst"
        return {
            account: sorted(
                (e for e in edges if getattr(e, side) == account and low <= e.ts_ms <= high),
                key=lambda e: (e.ts_ms, e.transfer_id),
            )[:limit]
            for account, (low, high) in ranges.items()
        }

    return fetch


def test_down_follows_layers_forward_in_time() -> None:
    graph = follow(ROOT, "down", 3, 2 * MS_PER_HOUR, 500, fetcher("down"))
    depths = {n.account: n.depth for n in graph.nodes}
    assert depths == {"victim": 0, "mule1": 1, "mule2a": 2, "mule2b": 2, "cash1": 3,
                      "cash2": 3, "far": 4}  # fmt: skip
    assert [e.transfer_id for e in graph.edges] == ["t0", "t1", "t2", "t3", "t4", "t7"]
    mule1 = next(n for n in graph.nodes if n.account == "mule1")
    assert (mule1.amount_in_minor, mule1.amount_out_minor) == (5_000_000, 4_800_000)
    assert not graph.truncated


def test_money_going_round_a_cycle_is_followed_round_it() -> None:
    """C1 → C2 → C3 → C1 twice: the second lap leaves C1 (the trace's start) after the money
    came back to it, so C1 is read again; every account's totals then add up."""
    names = ["c1", "c2", "c3"]
    cycle = [Edge(f"cyc-{i}", names[i % 3], names[(i + 1) % 3], 100_000 + i, i * M)
             for i in range(6)]  # fmt: skip
    down = follow(cycle[0], "down", 6, 2 * MS_PER_HOUR, 500, fetcher("down", cycle))
    assert sorted(e.transfer_id for e in down.edges) == [e.transfer_id for e in cycle]
    for node in down.nodes:
        assert node.amount_in_minor == sum(e.amount_minor for e in cycle if e.dst == node.account)
        assert node.amount_out_minor == sum(e.amount_minor for e in cycle if e.src == node.account)
    up = follow(cycle[-1], "up", 6, 2 * MS_PER_HOUR, 500, fetcher("up", cycle))
    assert sorted(e.transfer_id for e in up.edges) == [e.transfer_id for e in cycle]


def test_hops_window_and_edge_limit_bound_the_graph() -> None:
    two = follow(ROOT, "down", 2, 2 * MS_PER_HOUR, 500, fetcher("down"))
    assert max(n.depth for n in two.nodes) == 3
    short = follow(ROOT, "down", 3, 10 * M, 500, fetcher("down"))
    assert {n.account for n in short.nodes} == {"victim", "mule1", "mule2a", "mule2b"}
    cut = follow(ROOT, "down", 3, 2 * MS_PER_HOUR, 3, fetcher("down"))
    assert len(cut.edges) == 3 and cut.truncated


def test_each_layer_read_asks_no_account_for_more_than_the_graph_has_room_for() -> None:
    asked: list[int] = []
    down = fetcher("down")

    def counting(ranges: Mapping[str, tuple[int, int]], limit: int) -> Mapping[str, list[Edge]]:
        asked.append(limit)
        return down(ranges, limit)

    cut = follow(ROOT, "down", 3, 2 * MS_PER_HOUR, 2, counting)
    # Room for one edge after the root: mule1 is asked for 2 (one to know it has more).
    assert asked == [2] and cut.truncated and len(cut.edges) == 2
    whole = follow(ROOT, "down", 3, 2 * MS_PER_HOUR, 6, fetcher("down"))
    assert len(whole.edges) == 6 and not whole.truncated


def test_an_account_with_more_edges_than_were_read_marks_the_graph_truncated() -> None:
    def shortchanged(ranges: Mapping[str, tuple[int, int]], limit: int) -> dict[str, list[Edge]]:
        # Every account answers as if it held more than it was asked for: the edges read
        # include one already in the graph (the root), so fewer new edges than room arrive.
        return {account: [ROOT] * limit for account in ranges}

    graph = follow(ROOT, "down", 3, 2 * MS_PER_HOUR, 5, shortchanged)
    assert graph.truncated and [e.transfer_id for e in graph.edges] == ["t0"]


def test_up_goes_back_to_the_sources() -> None:
    start = Edge("t3", "mule2a", "cash1", 2_300_000, 20 * M)
    graph = follow(start, "up", 3, 2 * MS_PER_HOUR, 500, fetcher("up"))
    depths = {n.account: n.depth for n in graph.nodes}
    assert depths == {"cash1": 0, "mule2a": 1, "mule1": 2, "victim": 3, "someone": 3}


@pytest.mark.parametrize(("text", "ms"), [("30m", 30 * M), ("72h", 72 * MS_PER_HOUR),
                                          ("3d", 72 * MS_PER_HOUR), ("90s", 90_000)])  # fmt: skip
def test_windows(text: str, ms: int) -> None:
    assert parse_window_ms(text) == ms


@pytest.mark.parametrize("text", ["", "72", "h", "0h", "31d", "-1h", "1w", "1.5h"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window_ms(text)
