"""Follow the money: the flow graph from one transfer onward (down) or back to its sources (up).

Pure: edges come from a `fetch` callback that reads one whole layer at a time, so a trace
of H hops costs H reads however wide it fans out. Each read is bounded: an account gives at
most as many edges as the graph still has room for (plus one, to know it had more), so a
layer reads at most (accounts in the frontier) × (room left) edges, under max_edges² / 4.

Down from a transfer A→B at t: B's outgoing transfers in [t, t+W], then for each account C
reached, C's outgoing transfers from the moment money first reached C up to t+W, and so on
for H layers. Up is the mirror image: A's incoming transfers in [t-W, t], then each source's
incoming transfers up to the last moment it paid on, back to t-W. The root's payer (down) or
payee (up) is at depth 0, the other party at depth 1, the k-th layer's accounts at depth k+1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from models.features import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, RETENTION_MS

Direction = Literal["down", "up"]
_UNITS = {"s": 1000, "m": MS_PER_MINUTE, "h": MS_PER_HOUR, "d": MS_PER_DAY}
_WINDOW = re.compile(r"^([0-9]{1,7})([smhd])$")


def parse_window_ms(text: str) -> int:
    """A duration like `30m`, `72h` or `3d` → ms; raises ValueError if malformed, zero, or
    longer than the 30 days of history that state keeps."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"window must look like 30m, 72h or 3d, got {text[:20]!r}")
    window_ms = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < window_ms <= RETENTION_MS:
        raise ValueError("window must be more than 0 and at most 30d (the history kept)")
    return window_ms


@dataclass(frozen=True, slots=True)
class Edge:
    """One transfer in the graph."""

    transfer_id: str
    src: str
    dst: str
    amount_minor: int
    ts_ms: int


@dataclass(slots=True)
class Node:
    """One account in the graph, with the money that flowed through it in the graph."""

    account: str
    depth: int
    amount_in_minor: int = 0
    amount_out_minor: int = 0


@dataclass(frozen=True, slots=True)
class FlowGraph:
    """The root transfer, the accounts (by depth), the transfers, and whether it was cut."""

    root: Edge
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool


# Given {account: (from_ms, to_ms)} and a limit, each account's edges in that time range,
# earliest first and at most `limit` of them: its outgoing transfers when tracing down, its
# incoming ones when tracing up.
FetchLayer = Callable[[Mapping[str, tuple[int, int]], int], Mapping[str, list[Edge]]]


def follow(
    root: Edge,
    direction: Direction,
    hops: int,
    window_ms: int,
    max_edges: int,
    fetch: FetchLayer,
) -> FlowGraph:
    """The flow graph of `root` within `hops` layers, `window_ms` and `max_edges` edges."""
    down = direction == "down"
    start, first = (root.src, root.dst) if down else (root.dst, root.src)
    nodes = {start: Node(start, 0), first: Node(first, 1)}
    edges = [root]
    seen = {root.transfer_id}
    # Down: when money first reached each frontier account; up: when it last paid on.
    frontier = {first: root.ts_ms}
    # The time each account's edges were read from. Money that comes back to an account
    # before that (down; after, up), or to one never read (the trace's start), has it read
    # again, so a cycle is followed round rather than cut where it closes.
    read_from: dict[str, int] = {}
    truncated = False
    for depth in range(2, hops + 2):
        if not frontier or truncated:
            break
        if down:
            ranges = {a: (t, root.ts_ms + window_ms) for a, t in frontier.items()}
        else:
            ranges = {a: (root.ts_ms - window_ms, t) for a, t in frontier.items()}
        read_from.update(frontier)
        room = max_edges - len(edges)
        layer = fetch(ranges, room + 1)
        # An account that filled its share may hold more edges than were read.
        truncated = any(len(edges_of) > room for edges_of in layer.values())
        found = sorted(
            (e for edges_of in layer.values() for e in edges_of if e.transfer_id not in seen),
            key=lambda e: (e.ts_ms, e.transfer_id),
        )
        following: dict[str, int] = {}
        for edge in found:
            if edge.transfer_id in seen:
                continue
            if len(edges) >= max_edges:
                truncated = True
                break
            seen.add(edge.transfer_id)
            edges.append(edge)
            reached = edge.dst if down else edge.src
            if reached not in nodes:
                nodes[reached] = Node(reached, depth)
            at, before = edge.ts_ms, read_from.get(reached)
            if before is None or (at < before if down else at > before):
                known = following.get(reached, at)
                following[reached] = min(known, at) if down else max(known, at)
        frontier = following
    for edge in edges:
        if edge.src in nodes:
            nodes[edge.src].amount_out_minor += edge.amount_minor
        if edge.dst in nodes:
            nodes[edge.dst].amount_in_minor += edge.amount_minor
    ordered = sorted(nodes.values(), key=lambda n: (n.depth, n.account))
    return FlowGraph(root, ordered, edges, truncated)
