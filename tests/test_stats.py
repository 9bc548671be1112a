"""ComponentStats counters, errors and nearest-rank latency percentiles; the 0-100 health score and its reasons."""

from __future__ import annotations

import dataclasses

import pytest

from pxkit.stats import ComponentStats, HealthInputs, health_score

HEALTHY = HealthInputs(hubs_connected=2, hubs_total=2, stale_feeds=0, feeds_total=3, breaker_open=False,
                       messages=1000, errors=0, reconnects=0)


def stats_with(*latencies: float, window: int = 4096) -> ComponentStats:
    stats = ComponentStats("test", window=window)
    for ms in latencies:
        stats.latency(ms)
    return stats


# ---------------------------------------------------------------------------------------------- counters


def test_counters_and_errors_add_up_per_name() -> None:
    stats = ComponentStats("router")
    stats.count("trades", 3)
    stats.count("trades")
    stats.count("quotes")
    stats.error("TradesPushed")
    stats.error("TradesPushed")
    assert stats.counters == {"trades": 4, "quotes": 1}
    assert stats.errors == {"TradesPushed": 2}
    assert stats.counters["never"] == 0  # a Counter: unknown names read as 0


def test_snapshot_of_a_fresh_component_is_empty() -> None:
    stats = ComponentStats("data.MNQ")
    assert stats.percentiles() == {}
    assert stats.snapshot() == {"counters": {}, "errors": {}, "latency_ms": {}, "samples": 0}


def test_snapshot_reports_counters_errors_percentiles_and_samples() -> None:
    stats = stats_with(3.0, 1.0, 2.0)
    stats.count("trades", 7)
    stats.error("timers")
    assert stats.snapshot() == {"counters": {"trades": 7}, "errors": {"timers": 1},
                                "latency_ms": {"p50": 2.0, "p95": 3.0, "p99": 3.0}, "samples": 3}


# ---------------------------------------------------------------------------------------------- percentiles


@pytest.mark.parametrize(("point", "expected"), [
    (0, 1.0),  # below the first rank: the smallest
    (20, 1.0),  # ceil(0.20 * 5) = 1st
    (21, 2.0),  # ceil(1.05) = 2nd
    (50, 3.0),  # ceil(2.5) = 3rd: the median, not the 2nd
    (60, 3.0),  # ceil(3.0) = 3rd
    (95, 5.0),  # ceil(4.75) = 5th
    (100, 5.0),
])
def test_percentiles_are_nearest_rank_of_five_samples(point: int, expected: float) -> None:
    assert stats_with(5.0, 1.0, 4.0, 2.0, 3.0).percentiles([point]) == {f"p{point}": expected}


def test_percentiles_of_a_hundred_samples() -> None:
    stats = stats_with(*(i / 10 for i in range(100, 0, -1)))  # 0.1 ... 10.0, inserted in reverse
    assert stats.percentiles() == {"p50": 5.0, "p95": 9.5, "p99": 9.9}
    assert stats.percentiles([7, 1]) == {"p7": 0.7, "p1": 0.1}  # 7% of 100 is exactly the 7th, no float overshoot


def test_one_sample_is_every_percentile_and_values_are_rounded_to_microseconds() -> None:
    assert stats_with(1.23456).percentiles() == {"p50": 1.235, "p95": 1.235, "p99": 1.235}


def test_the_latency_window_keeps_only_the_newest_samples() -> None:
    stats = stats_with(100.0, 1.0, 2.0, 3.0, 4.0, window=4)  # 100 ms has left the window
    assert stats.percentiles() == {"p50": 2.0, "p95": 4.0, "p99": 4.0}
    assert stats.snapshot()["samples"] == 4


# ---------------------------------------------------------------------------------------------- health score


def test_a_healthy_suite_scores_100_without_reasons() -> None:
    assert health_score(HEALTHY) == (100, [])


@pytest.mark.parametrize(("changes", "score", "reason"), [
    ({"hubs_connected": 1}, 60, "1 of 2 hubs disconnected"),
    ({"hubs_connected": 0}, 20, "2 of 2 hubs disconnected"),
    ({"breaker_open": True}, 70, "REST circuit breaker open"),
    ({"stale_feeds": 1}, 83, "1 of 3 market feeds stale"),  # 100 - 50/3
    ({"stale_feeds": 3}, 50, "3 of 3 market feeds stale"),
    ({"errors": 5}, 97, "5 processing errors"),  # 2 + 200 * 0.005
    ({"errors": 10, "messages": 0}, 80, "10 processing errors"),  # no messages: the error penalty is capped at 20
    ({"reconnects": 3}, 94, "3 reconnects"),
    ({"reconnects": 50}, 90, "50 reconnects"),  # capped at 10
    ({"failed_instruments": 2}, 90, "2 instruments failed to start"),
    ({"quarantined": 1}, 95, "1 market events stamped ahead of the exchange clock quarantined"),  # 5 + 200 * 0.001
    ({"quarantined": 100}, 80, "100 market events stamped ahead of the exchange clock quarantined"),  # capped at 20
])
def test_each_cause_lowers_the_score_and_is_named(changes: dict[str, object], score: int, reason: str) -> None:
    assert health_score(dataclasses.replace(HEALTHY, **changes)) == (score, [reason])


def test_no_hubs_or_feeds_known_is_not_a_penalty() -> None:
    assert health_score(dataclasses.replace(HEALTHY, hubs_connected=0, hubs_total=0, feeds_total=0)) == (100, [])


def test_everything_wrong_scores_0_and_lists_every_cause_after_the_notes() -> None:
    inputs = HealthInputs(hubs_connected=0, hubs_total=2, stale_feeds=3, feeds_total=3, breaker_open=True,
                          messages=10, errors=10, reconnects=9, failed_instruments=1, notes=("clock skew 3 s",))
    assert health_score(inputs) == (0, ["clock skew 3 s", "2 of 2 hubs disconnected", "REST circuit breaker open",
                                        "3 of 3 market feeds stale", "10 processing errors", "9 reconnects",
                                        "1 instrument failed to start"])


def test_a_note_alone_is_reported_without_lowering_the_score() -> None:
    assert health_score(dataclasses.replace(HEALTHY, notes=("simulated gateway",))) == (100, ["simulated gateway"])


def test_the_score_stays_within_0_and_100_and_falls_with_each_added_trouble() -> None:
    worse = [{"failed_instruments": 1}, {"reconnects": 4}, {"errors": 40}, {"stale_feeds": 2}, {"breaker_open": True},
             {"hubs_connected": 1}]
    inputs, scores = HEALTHY, []
    for changes in worse:
        inputs = dataclasses.replace(inputs, **changes)
        score, reasons = health_score(inputs)
        scores.append(score)
        assert len(reasons) == len(scores)
    assert scores == [90, 82, 72, 39, 9, 0]  # the last one would be -31: bounded at 0
