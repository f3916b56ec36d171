"""The bench's reading of the sequencer's phase histogram: quantiles of what one scenario
added, not of everything since the daemon started."""

import math

from bench.sequencer_bench import phase_quantiles


def test_quantiles_are_of_the_difference_between_two_scrapes() -> None:
    before = {"durable": {0.001: 10.0, 0.01: 10.0, math.inf: 10.0}}
    after = {
        "durable": {0.001: 60.0, 0.01: 105.0, math.inf: 110.0},
        "seal": {0.001: 0.0, 0.01: 2.0, math.inf: 2.0},
    }
    assert phase_quantiles(before, after) == {
        # 100 new: 50 under 1 ms, 95 under 10 ms, 5 beyond the last finite bound
        "durable": {"p50": 1.0, "p90": 10.0, "p99": None},
        # a phase the first scrape had not seen yet counts from zero
        "seal": {"p50": 10.0, "p90": 10.0, "p99": 10.0},
    }


def test_a_phase_without_new_observations_has_no_quantiles() -> None:
    both = {"sequence": {0.001: 5.0, math.inf: 5.0}}
    assert phase_quantiles(both, both) == {"sequence": {"p50": None, "p90": None, "p99": None}}
