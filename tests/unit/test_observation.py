"""When observation began and began again: the pure rules both state stores apply."""

from __future__ import annotations

from streams.state.observation import GAP_MS, KEPT_STARTS, Observation, segments

T = 1_772_374_503_000


def test_a_batch_is_cut_into_segments_at_silences_longer_than_the_gap() -> None:
    assert segments([]) == []
    assert segments([T + 5, T, T + GAP_MS]) == [(T, T + GAP_MS)]
    late = T + 3 * GAP_MS
    after_gap = T + GAP_MS + 1
    assert segments([late, T, after_gap, late + 1]) == [
        (T, T), (after_gap, after_gap), (late, late + 1),
    ]  # fmt: skip


def test_observation_begins_with_the_first_transfer_and_again_only_after_a_long_silence() -> None:
    first = Observation().applied([T + 10, T])
    assert first == Observation((T,), T + 10)
    steady = first.applied([T + GAP_MS + 10])  # exactly the gap after the latest: no silence
    assert steady.starts == (T,)
    again = steady.applied([T + 2 * GAP_MS + 11])
    assert again.starts == (T, T + 2 * GAP_MS + 11)
    # Late and old events move nothing.
    assert again.applied([T - 10 * GAP_MS]) == Observation(again.starts, again.latest)


def test_each_time_is_judged_by_the_observation_in_force_then() -> None:
    observation = Observation((T, T + 5 * GAP_MS), T + 6 * GAP_MS)
    assert observation.since(T + GAP_MS) == T
    assert observation.since(T + 5 * GAP_MS) == T + 5 * GAP_MS
    assert observation.since(T - 1) == T - 1  # before any start: not observed at all
    assert observation.current_start == T + 5 * GAP_MS
    assert Observation().current_start is None


def test_only_the_newest_starts_are_kept() -> None:
    observation = Observation()
    for i in range(KEPT_STARTS + 2):
        observation = observation.applied([T + i * 2 * GAP_MS])
    assert len(observation.starts) == KEPT_STARTS
    assert observation.starts[-1] == T + (KEPT_STARTS + 1) * 2 * GAP_MS


def test_the_stored_text_reads_back_and_a_lone_start_is_the_layout_before_restarts() -> None:
    observation = Observation((T, T + 3 * GAP_MS), T + 4 * GAP_MS)
    assert Observation.decode(observation.encode().encode()) == observation
    assert Observation.decode(None) == Observation()
    # What is not a number (written by hand) is skipped, as the Redis function skips it.
    assert Observation.decode(b"garbage") == Observation()
    assert Observation.decode(f"{T},x".encode()) == Observation((T,))
    legacy = Observation.decode(str(T))
    assert legacy == Observation((T,))
    # No latest time known: no silence can be measured, so it goes on.
    assert legacy.applied([T + 10 * GAP_MS]) == Observation((T,), T + 10 * GAP_MS)
