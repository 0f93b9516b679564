"""One latency timer: time_rounds warms every call up, then times them in interleaved rounds; the single-model,
paired (time_paired) and side-by-side timings all come from it."""

import time

from edgeprune.measure.latency import time_calls, time_paired, time_rounds


def test_rounds_interleave_the_calls_after_their_warm_up():
    order = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("a", "b")}
    times = time_rounds(calls, rounds=3, per_round=2, warmup=1)
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}


def test_a_slower_call_times_slower_in_the_same_rounds():
    times = time_rounds({"slow": lambda: time.sleep(0.004), "fast": lambda: None}, rounds=3, warmup=0)
    assert all(s >= 4.0 for s in times["slow"]) and sorted(times["fast"])[1] < 4.0  # the median: robust to one preemption
    assert time_calls(lambda: time.sleep(0.004), runs=3, warmup=0)["median_ms"] >= 4.0


def test_paired_timing_gives_the_ratio_of_the_fastest_calls_and_the_spread():
    timed = time_paired(lambda: time.sleep(0.006), lambda: time.sleep(0.002), runs=5, warmup=1)
    assert timed["ratio"] == timed["first"]["min_ms"] / timed["second"]["min_ms"] > 1.0
    assert timed["ratio_p10"] <= timed["ratio_p90"] and timed["first"]["runs"] == timed["second"]["runs"] == 5


def test_the_speed_up_holds_when_other_work_delays_most_calls_of_one_side():
    calls = iter(range(100))

    def delayed_candidate():  # 2 ms, but other work adds 10 ms to three calls in five (a median would say 0.5x)
        time.sleep(0.012 if next(calls) % 5 < 3 else 0.002)

    timed = time_paired(lambda: time.sleep(0.006), delayed_candidate, runs=10, warmup=0)
    assert timed["second"]["median_ms"] > timed["first"]["median_ms"]
    assert 2.0 < timed["ratio"] < 3.5


def test_alternating_calls_run_in_blocks_long_enough_to_run_warm():
    """A call much faster than the block runs as many times in a row as fill it; the round's time is the block's
    median. One call of each in turn timed a small model cold, after the reference had filled the caches."""
    order = []
    calls = {"slow": lambda: (order.append("slow"), time.sleep(0.012)), "fast": lambda: (order.append("fast"), time.sleep(0.001))}
    times = time_rounds(calls, rounds=2, warmup=1, min_block_ms=10.0)
    timed = order[2:]  # after one warm-up call each
    assert timed[:1] == ["slow"] and timed[1:].count("fast") >= 10 * timed.count("slow") / 2
    assert all(t < 6.0 for t in times["fast"]) and all(t >= 12.0 for t in times["slow"])


def test_paired_timing_runs_the_fast_side_in_blocks():
    counts = {"first": 0, "second": 0}

    def call(name, seconds):
        counts[name] += 1
        time.sleep(seconds)

    time_paired(lambda: call("first", 0.011), lambda: call("second", 0.0005), runs=3, warmup=1)
    assert counts["first"] == 1 + 3 and counts["second"] >= 1 + 3 * 5


def test_a_time_cap_cuts_the_warm_up_and_the_rounds_of_slow_calls_only():
    """MaxViT-T at 224 px runs about 5 s a call at batch 32 on one core: 10 warm-up calls and 20 rounds of the input
    model took minutes of a default call. Under ``max_seconds`` the warm-up stops after a quarter of it and the rounds
    fit the rest, never fewer than MIN_ROUNDS; fast calls keep every round."""
    from edgeprune.measure.latency import MIN_ROUNDS

    count = [0]

    def slow():
        count[0] += 1
        time.sleep(0.05)

    timed = time_calls(slow, runs=50, warmup=10, max_seconds=0.5)
    assert count[0] - timed["runs"] == 3  # warm-up: past 0.125 s after three calls of 50 ms
    assert MIN_ROUNDS <= timed["runs"] <= 7  # the 0.35 s left
    assert time_calls(slow, runs=50, warmup=10, max_seconds=0.01)["runs"] == MIN_ROUNDS
    assert time_calls(lambda: None, runs=50, warmup=10, max_seconds=0.4)["runs"] == 50
    assert time_paired(slow, slow, runs=20, warmup=5, max_seconds=0.4)["first"]["runs"] == MIN_ROUNDS
