"""Streaming RPS (algo/stream.py) in a discrete-event simulation where short responses finish first and a
response's length and its group's acceptance are correlated, as in real rollouts."""

import heapq
import itertools

import numpy as np
import pytest

from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.stream import StreamingBuild
from openrlhf_mt.algo.types import Group

WEIGHTS = {"hard": 0.5, "easy": 0.5}
# per task: P(zero-gradient) for a short response (length < 50) and for a long one
ZERO_GRADIENT = {"hard": (0.9, 0.3), "easy": (0.5, 0.1)}


class Rollouts:
    """A group per prompt: its response length (payload) ~ U[1, 100), and its rewards."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def group(self, task: str) -> Group:
        length = float(self.rng.uniform(1, 100))
        zero_gradient = self.rng.random() < ZERO_GRADIENT[task][length >= 50]
        return Group(task, (0.0, 0.0) if zero_gradient else (1.0, 0.0), payload=length)

    def generate(self, counts: dict[str, int]) -> list[Group]:
        return [self.group(task) for task, count in counts.items() for _ in range(count)]


def sampler(**kwargs) -> RatioPreservingSampler:
    return RatioPreservingSampler(list(WEIGHTS), 32, filter_mode="lenient", seed=0, **kwargs)


def stream_steps(steps: int, order: str = "submission", **kwargs) -> list[tuple[list[Group], object]]:
    """Streamed steps: every prompt finishes `length` time units after it was submitted. Each result's
    BatchInfo gets the step's generation latency (until the last prompt in flight is in) as `.latency`."""
    s, rollouts, keys, clock = sampler(**kwargs), Rollouts(seed=1), itertools.count(), 0.0
    results = []
    for _ in range(steps):
        start = clock
        build, events = StreamingBuild(s, WEIGHTS), []
        while True:
            for task, count in build.requests().items():
                for _ in range(count):
                    group, key = rollouts.group(task), next(keys)
                    # first-come order: a fresh key per completion makes every group the head of its queue
                    build.submitted(task, key if order == "submission" else ("late", key))
                    heapq.heappush(events, (clock + group.payload, key, group))
            if build.done() or not events:
                break
            clock, key, group = heapq.heappop(events)
            complete(build, key, group, order)
        while events:  # drain what is still in flight
            clock, key, group = heapq.heappop(events)
            complete(build, key, group, order)
        groups, info = build.finish()
        info.latency = clock - start
        results.append((groups, info))
    return results


def complete(build: StreamingBuild, key, group: Group, order: str) -> None:
    if order == "submission":
        build.completed(key, group)
    else:  # the biased alternative: observe in completion order (take the oldest submitted key of the task)
        task_keys = [k for k in build.in_flight_keys() if build.task_of[k] == build.sampler.index[group.task]]
        build.completed(min(task_keys, key=lambda k: k[1]), group)


def round_steps(steps: int, request: str) -> tuple[list[tuple[list[Group], object]], float]:
    """Algorithm 2's synchronous rounds on the same rollouts; and the mean latency per step (each round
    waits for its longest response)."""
    s, rollouts = sampler(request=request), Rollouts(seed=1)
    latency = []

    def generate(counts):
        groups = rollouts.generate(counts)
        latency[-1] += max(g.payload for g in groups)
        return groups

    results = []
    for _ in range(steps):
        latency.append(0.0)
        results.append(s.build_batch(WEIGHTS, generate))
    return results, float(np.mean(latency[10:]))


def mean_length(results) -> float:
    return float(np.mean([g.payload for groups, _ in results for g in groups]))


def test_kept_groups_have_the_lengths_of_a_sequential_build_not_of_completion_order() -> None:
    streamed = stream_steps(300)
    rounds, _ = round_steps(300, "oversample")
    naive = stream_steps(300, order="completion")
    # accepted groups are mostly long ones (short ones are usually zero-gradient), and completion order
    # favours short ones: a first-come build keeps shorter responses than the tasks' accepted groups have
    assert mean_length(streamed) == pytest.approx(mean_length(rounds), abs=1.5)  # ~9,600 groups each
    assert mean_length(naive) < mean_length(rounds) - 5


def test_streamed_batches_keep_the_shares_generate_near_the_ideal_and_finish_sooner() -> None:
    results = stream_steps(300)[10:]
    shares = {t: np.mean([info.realised_share[t] for _, info in results]) for t in WEIGHTS}
    assert shares == pytest.approx(WEIGHTS, abs=0.01)
    assert all(len(groups) == 32 and info.shortfall == 0 for groups, info in results)
    generated = sum(sum(info.generated.values()) for _, info in results)
    assert generated / sum(info.ideal_generated for _, info in results) < 1.3
    streamed_latency = np.mean([info.latency for _, info in results])
    _, released_latency = round_steps(300, "oversample")
    _, adaptive_latency = round_steps(300, "adaptive")
    assert streamed_latency < 0.9 * adaptive_latency and streamed_latency < released_latency


def test_surplus_goes_to_the_replay_buffer_and_comes_back_next_step() -> None:
    results = stream_steps(50, reuse_max_age=1)
    assert sum(info.reused for _, info in results) > 0
    assert all(info.reused_mean_age == 1.0 for _, info in results if info.reused)


def test_a_group_completed_before_an_earlier_prompt_of_its_task_waits_for_it() -> None:
    build = StreamingBuild(sampler(), {"hard": 1.0, "easy": 0.0})
    build.requests()
    for key, task in enumerate(["hard", "hard", "easy"]):
        build.submitted(task, key)
    first, second, other = (Group(t, (1.0, 0.0), payload=k) for k, t in enumerate(["hard", "hard", "easy"]))
    build.completed(1, second)
    assert build.batch[0] == [] and build.held_accepted.tolist() == [1, 0]  # held, yet counted for top-ups
    build.completed(2, other)
    assert build.surplus == [other]  # another task's queue: "easy" has no quota
    build.completed(0, first)
    assert build.batch[0] == [first, second] and build.held_accepted.tolist() == [0, 0]


def test_finish_with_prompts_in_flight_is_refused() -> None:
    build = StreamingBuild(sampler(), WEIGHTS)
    build.submitted("hard", 0)
    with pytest.raises(RuntimeError, match="still in flight"):
        build.finish()


def test_streaming_needs_ratio_preservation_and_a_filter() -> None:
    with pytest.raises(ValueError, match="needs preserve_ratio and a filter"):
        StreamingBuild(sampler(preserve_ratio=False), WEIGHTS)
