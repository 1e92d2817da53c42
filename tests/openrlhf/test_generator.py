"""MultiTaskSamplesGenerator against OpenRLHF 0.11.2's real SamplesGenerator, PromptDataset and Experience,
with a scripted rollout engine (a Ray actor answering `generate_responses` in 0.11.2's response schema)
whose groups are zero-gradient at a fixed rate per task."""

from __future__ import annotations

import dataclasses
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("openrlhf")
pytest.importorskip("vllm")

from openrlhf_mt.config import apply_method  # noqa: E402
from openrlhf_mt.engines.openrlhf.weights_actor import ACTOR_NAME  # noqa: E402

TASKS = ("easy", "medium", "hard")
ZERO_GRADIENT_RATE = {"easy": 0.1, "medium": 0.5, "hard": 0.8}
WEIGHTS = {"easy": 0.2, "medium": 0.3, "hard": 0.5}
BATCH, ROLLOUTS, STEPS = 24, 4, 6


@pytest.fixture(scope="module", autouse=True)
def plain_sampling_params() -> Iterator[None]:
    """Upstream sends each request with vLLM's SamplingParams, and unpickling one imports vLLM in the
    scripted engine's Ray worker: 30-60 s per new engine on an idle 2-core machine, 4 minutes under load,
    for an object the scripted engine never reads. A plain namespace stands in."""
    from openrlhf.trainer.ppo_utils import samples_generator

    with mock.patch.object(samples_generator, "SamplingParams", SimpleNamespace):
        yield


@ray.remote(num_cpus=0)
class ScriptedRolloutEngine:
    """Stands in for OpenRLHF's RolloutRayActor: same method names, same response dicts, no model.

    By default a group is zero-gradient at a fixed rate per task. With `lengths_from_prompt`, a prompt's
    response length (1-20 tokens) and whether its group is accepted are fixed by its text (long responses
    far more often: a solved puzzle takes more tokens), and the answer takes 10 ms per token; created with
    `.options(max_concurrency=...)` it answers concurrently, short responses first, as vLLM's engines do.
    (Ray ships this class by value but a module-level function by reference, which the worker cannot
    import: hence methods only.)"""

    def __init__(self, lengths_from_prompt: bool = False) -> None:
        self.lengths_from_prompt = lengths_from_prompt
        self.reset()

    def reset(self, seed: int = 0, zero_gradient_rate: dict[str, float] = ZERO_GRADIENT_RATE) -> None:
        self.rng = random.Random(seed)
        self.zero_gradient_rate = zero_gradient_rate
        self.arrived = 0
        self.finished: list[int] = []  # arrival numbers, in the order the prompts finished

    def set_zero_gradient_rate(self, rates: dict[str, float]) -> None:
        self.zero_gradient_rate = rates

    def get_num_unfinished_requests(self) -> int:
        return 0

    def outcome(self, prompt: str) -> tuple[int, bool]:
        """lengths_from_prompt: (response length, whether the group is accepted)."""
        digest = zlib.crc32(prompt.encode())
        length = 1 + digest % 20
        return length, (digest >> 8) % 100 < (80 if length > 10 else 20)

    def accepted(self, prompts: list[str]) -> list[bool]:
        return [self.outcome(prompt)[1] for prompt in prompts]

    def finish_order(self) -> list[int]:
        return self.finished

    def generate_responses(
        self, prompt, label, sampling_params, max_length, hf_tokenizer, num_samples=1, images=None
    ):
        arrival, self.arrived = self.arrived, self.arrived + 1
        if self.lengths_from_prompt:
            length, accepted = self.outcome(prompt)
            time.sleep(0.01 * length)
            action = [20] * (length - 1) + [2]  # digits and EOS
        else:
            accepted = self.rng.random() >= self.zero_gradient_rate[json.loads(label)["task"]]
            action = [20, 21, 22, 2]  # three digits and EOS
        self.finished.append(arrival)
        prompt_tokens = hf_tokenizer(prompt, add_special_tokens=False)["input_ids"]
        rewards = [1.0] + [0.1] * (num_samples - 1) if accepted else [0.0] * num_samples
        return [
            {
                "prompt": prompt,
                "label": label,
                "images": images,
                "mm_train_inputs": None,
                "observation_tokens": prompt_tokens + action,
                "action_ranges": [(len(prompt_tokens), len(prompt_tokens) + len(action))],
                "rollout_log_probs": None,
                "truncated": False,
                "reward": reward,
                "scores": float(reward == 1.0),
                "extra_logs": {},
            }
            for reward in rewards
        ]


@pytest.fixture(scope="module")
def scripted(local_ray) -> Iterator[Callable[..., Any]]:
    """The synchronous tests' scripted engine, reset to a seed and zero-gradient rates per use: one Ray
    worker for them all (each new one imports transformers to unpickle the tokenizer that upstream sends
    with every request: 10-30 s on 2 loaded cores)."""
    engine = ScriptedRolloutEngine.remote()

    def reset(seed: int = 1, zero_gradient_rate: dict[str, float] = ZERO_GRADIENT_RATE) -> Any:
        ray.get(engine.reset.remote(seed, zero_gradient_rate))
        return engine

    yield reset
    ray.kill(engine)


def make_generator(algo: Any, tokenizer: Any, engine: Any, data_parallel: int = 2) -> Any:
    """The generator of a run with `data_parallel` DeepSpeed ranks and training micro-batches of 4."""
    from openrlhf.datasets import PromptDataset

    from openrlhf_mt.engines.openrlhf.generator import MultiTaskSamplesGenerator

    args = SimpleNamespace(
        rollout=SimpleNamespace(
            batch_size=BATCH, n_samples_per_prompt=ROLLOUTS, vllm_generate_batch_size=BATCH
        ),
        algo=SimpleNamespace(
            dynamic_filtering_enable=False, advantage=SimpleNamespace(is_correction_level="off")
        ),
        vllm=SimpleNamespace(enable_sleep=False),
        train=SimpleNamespace(
            async_enable=False,
            seed=0,
            num_episodes=1,
            batch_size=BATCH * ROLLOUTS,
            max_epochs=1,
            micro_batch_size=4,
        ),
        actor=SimpleNamespace(num_nodes=1, num_gpus_per_node=data_parallel),
        ds=SimpleNamespace(ring_attn_size=1, tensor_parallel_size=1),
        ckpt=SimpleNamespace(path=None),
        data=SimpleNamespace(
            input_key="prompt", label_key="label", apply_chat_template=False, image_key="images"
        ),
        mt=SimpleNamespace(algo=algo, method="test", max_steps=STEPS, dry_run=False),
    )
    strategy = SimpleNamespace(args=args, is_rank_0=lambda: True)
    rows = [
        {"prompt": f"{task} {i}=", "label": json.dumps({"task": task, "target": str(i)}), "datasource": task}
        for task in TASKS
        for i in range(40)
    ]
    loader = SimpleNamespace(dataset=PromptDataset(rows, tokenizer, strategy))
    return MultiTaskSamplesGenerator(strategy, loader, None, tokenizer, [engine])


def trained(generator: Any, samples: Any) -> Any:
    """What the trainer does with a batch the weights actor sees: apply its step (no training signals)."""
    ray.get(
        generator.weights_actor.apply_step.remote(generator.batches, samples.record.accuracy_per_round, [])
    )
    return samples


def run(algo: Any, tokenizer: Any, engine: Any) -> tuple[list[list[Any]], list[dict[str, float]]]:
    """STEPS batches; the per-batch metrics as the trainer reads them from each batch's record."""
    generator = make_generator(algo, tokenizer, engine)
    batches, metrics = [], []
    try:
        for step in range(STEPS):
            samples, pass_rate, consumed, done = generator.generate_samples(max_len=64, max_new_tokens=8)
            batches.append(trained(generator, samples))
            metrics.append(samples.record.metrics)
            assert generator.state_dict()["batches"] == step + 1
            assert done == (step == STEPS - 1)
            assert pass_rate == pytest.approx(100 * (1 - sum_zero_gradient(metrics[-1]) / consumed))
    finally:
        ray.kill(ray.get_actor(ACTOR_NAME))
    return batches, metrics


def sum_zero_gradient(metrics: dict[str, float]) -> float:
    return sum(metrics[f"mt/{t}/zero_gradient_rate"] * metrics[f"mt/{t}/generated_groups"] for t in TASKS)


def task_of(experience: Any) -> str:
    return json.loads(experience.labels[0])["task"]


def shares(batches: list[list[Any]]) -> dict[str, float]:
    counts = Counter(task_of(e) for batch in batches for e in batch)
    return {t: counts[t] / sum(counts.values()) for t in TASKS}


def static(method: str) -> Any:
    return dataclasses.replace(apply_method(method), weighter="static", static_weights=WEIGHTS, max_rounds=10)


@pytest.fixture(scope="module")
def mt_grpo_run(scripted, char_tokenizer) -> tuple[list[list[Any]], list[dict[str, float]]]:
    return run(static("mt-grpo"), char_tokenizer, scripted())


def test_mt_grpo_batches_keep_the_weights_while_dapo_drifts_to_the_easy_task(
    mt_grpo_run, scripted, char_tokenizer
) -> None:
    mt_batches, mt_metrics = mt_grpo_run
    dapo_batches, _ = run(static("dapo"), char_tokenizer, scripted())
    mt_shares, dapo_shares = shares(mt_batches), shares(dapo_batches)
    for task in TASKS:  # 144 groups drawn ~ Multinomial(24, z) per step: within 3 standard deviations
        assert mt_shares[task] == pytest.approx(WEIGHTS[task], abs=0.12)
    assert all(m["mt/shortfall"] == 0 for m in mt_metrics)
    # DAPO refills task-blind: accepted groups come in proportion to z_k (1 - zero-gradient rate)
    expected = {t: WEIGHTS[t] * (1 - ZERO_GRADIENT_RATE[t]) for t in TASKS}
    expected = {t: v / sum(expected.values()) for t, v in expected.items()}
    assert dapo_shares["easy"] > WEIGHTS["easy"] + 0.1
    assert dapo_shares["hard"] < WEIGHTS["hard"] - 0.15
    for task in TASKS:
        assert dapo_shares[task] == pytest.approx(expected[task], abs=0.12)
    assert abs(mt_shares["hard"] - WEIGHTS["hard"]) < abs(dapo_shares["hard"] - WEIGHTS["hard"])


def test_batches_are_complete_groups_in_order_with_reward_spread(mt_grpo_run) -> None:
    batches, metrics = mt_grpo_run
    for batch, step_metrics in zip(batches, metrics, strict=True):
        assert len(batch) == BATCH * ROLLOUTS
        for start in range(0, len(batch), ROLLOUTS):
            group = batch[start : start + ROLLOUTS]
            assert len({e.prompts[0] for e in group}) == 1  # one prompt's N rollouts, consecutive
            rewards = [e.rewards.item() for e in group]
            assert max(rewards) > min(rewards)  # zero-gradient groups were dropped
        selected = Counter(task_of(e) for e in batch[::ROLLOUTS])
        assert all(selected[t] == step_metrics[f"mt/{t}/selected_groups"] for t in TASKS)
        assert sum(step_metrics[f"mt/{t}/batch_share"] for t in TASKS) == pytest.approx(1.0)


def test_grpo_keeps_every_group_in_one_round(scripted, char_tokenizer) -> None:
    grpo = dataclasses.replace(apply_method("grpo"), weighter="static", static_weights=WEIGHTS)
    batches, metrics = run(grpo, char_tokenizer, scripted())
    assert all(m["mt/rounds"] == 1 and m["mt/pass_rate"] == 100.0 for m in metrics)
    assert all(len(batch) == BATCH * ROLLOUTS for batch in batches)


def test_short_batches_are_trimmed_to_what_the_ranks_split_and_empty_ones_are_skipped(
    scripted, char_tokenizer
) -> None:
    """One round, strict filter: "hard" is never accepted, so batches are short. 2 ranks x micro-batch 4 =
    8 samples = 2 groups: every batch is an even number of groups. With every task zero-gradient no group
    is accepted: the batch is skipped, counted, and its J_k rounds ride with the next batch."""
    from openrlhf_mt.engines.openrlhf.generator import MultiTaskSamplesGenerator

    rates = {"easy": 0.3, "medium": 0.5, "hard": 1.0}
    engine = scripted(3, rates)
    algo = dataclasses.replace(static("mt-grpo"), max_rounds=1, oversample=1.0)
    generator = make_generator(algo, char_tokenizer, engine=engine, data_parallel=2)
    try:
        trimmed = 0
        for _ in range(4):
            samples, *_ = generator.generate_samples(max_len=64, max_new_tokens=8)
            trained(generator, samples)
            metrics = samples.record.metrics
            groups = len(samples) // ROLLOUTS
            assert 0 < groups < BATCH and groups % 2 == 0 and len(samples) % 8 == 0
            assert metrics["mt/batch_groups"] == groups
            assert sum(metrics[f"mt/{t}/selected_groups"] for t in TASKS) == groups
            assert metrics["mt/hard/selected_groups"] == 0
            assert len(samples.record.accuracy_per_round) == 1
            trimmed += metrics["mt/trimmed_groups"]
        assert trimmed > 0  # an odd number of accepted groups happened and was trimmed by one

        ray.get(engine.set_zero_gradient_rate.remote(dict.fromkeys(TASKS, 1.0)))
        for _ in range(2):
            samples, _, consumed, done = generator.generate_samples(max_len=64, max_new_tokens=8)
            assert samples == [] and consumed == BATCH and not done
        assert generator.state_dict()["batches"] == 4  # skipped batches are not steps
        ray.get(engine.set_zero_gradient_rate.remote(rates))
        samples, *_ = generator.generate_samples(max_len=64, max_new_tokens=8)
        record = samples.record
        assert record.metrics["mt/skipped_batches"] == 2 and record.metrics["mt/empty_batches"] == 2
        assert len(record.accuracy_per_round) == 3  # the two skipped rounds, then this batch's
        assert record.accuracy_per_round[0] == dict.fromkeys(TASKS, 0.0)

        state = generator.state_dict()  # what upstream saves with the prompt loader's state
        resumed = MultiTaskSamplesGenerator.__new__(MultiTaskSamplesGenerator)
        resumed.__dict__.update(generator.__dict__)
        resumed.streams = {t: type(s)(s.size, s.seed, s.task_index) for t, s in generator.streams.items()}
        resumed.load_state_dict(state)
        assert resumed.state_dict() == state
    finally:
        ray.kill(ray.get_actor(ACTOR_NAME))


def test_a_run_that_never_gets_a_group_accepted_stops_with_a_clear_error(scripted, char_tokenizer) -> None:
    from openrlhf_mt.engines.openrlhf import generator as generator_module

    engine = scripted(4, dict.fromkeys(TASKS, 1.0))
    generator = make_generator(dataclasses.replace(static("mt-grpo"), max_rounds=1), char_tokenizer, engine)
    try:
        with pytest.raises(RuntimeError, match="no batch to train on in 20 attempts in a row"):
            for _ in range(generator_module.MAX_CONSECUTIVE_EMPTY_BATCHES):
                assert generator.generate_samples(max_len=64, max_new_tokens=8)[0] == []
    finally:
        ray.kill(ray.get_actor(ACTOR_NAME))


def test_streaming_trains_each_tasks_first_accepted_groups_in_submission_order_and_resumes_exactly(
    local_ray, char_tokenizer
) -> None:
    """request=streaming: groups come back out of order (short ones first), yet each task's batch groups
    are its first accepted ones in the order its prompts were sent: which groups are trained on does
    not depend on response lengths. The prompts still out when the quotas are met are cancelled.

    A checkpoint taken then holds nothing in flight, and a run resumed from it trains exactly the groups
    the uninterrupted run trains next (each task's first accepted prompts from where its stream stood).
    Only the next batch: how many prompts a streamed batch submits depends on when results come back, so
    the batch after it may start from another stream position in two runs, resumed or not."""
    import pickle

    from openrlhf_mt.algo.sampler import RatioPreservingSampler
    from openrlhf_mt.engines.openrlhf.generator import MultiTaskSamplesGenerator

    engine = ScriptedRolloutEngine.options(max_concurrency=256).remote(lengths_from_prompt=True)
    algo = dataclasses.replace(static("mt-grpo"), request="streaming")
    generator = make_generator(algo, char_tokenizer, engine=engine, data_parallel=2)
    sent: list[str] = []
    dispatch_to_vllm = generator._dispatch_prompts_to_vllm

    def recording(prompts, labels, **kwargs):
        sent.extend(prompts)
        return dispatch_to_vllm(prompts, labels, **kwargs)

    generator._dispatch_prompts_to_vllm = recording

    def next_batch(run: Any) -> Any:
        samples, *_ = run.generate_samples(max_len=64, max_new_tokens=24)
        trained(run, samples)
        return samples

    def prompts_of(samples: Any) -> list[str]:
        return sorted(e.prompts[0] for e in samples[::ROLLOUTS])

    try:
        cancelled = 0
        for _ in range(3):
            sent.clear()
            samples = next_batch(generator)
            metrics = samples.record.metrics
            assert len(samples) == BATCH * ROLLOUTS and metrics["mt/shortfall"] == 0
            batch_prompts = [e.prompts[0] for e in samples[::ROLLOUTS]]
            accepted = ray.get(engine.accepted.remote(sent))
            for task in TASKS:
                accepted_in_order = [
                    p for p, ok in zip(sent, accepted, strict=True) if ok and p.startswith(task)
                ]
                kept = [p for p in batch_prompts if p.startswith(task)]
                assert len(kept) == metrics[f"mt/{task}/selected_groups"]
                assert Counter(kept) == Counter(accepted_in_order[: len(kept)])
            cancelled += metrics["mt/cancelled_groups"]
        finished = ray.get(engine.finish_order.remote())
        assert finished != sorted(finished)  # prompts finished out of the order they were sent in
        assert cancelled > 0

        # as upstream saves them: plain data, no object refs
        checkpoint = pickle.dumps(generator.state_dict())
        weights_checkpoint = ray.get(generator.weights_actor.state_dict.remote())
        uninterrupted = prompts_of(next_batch(generator))
        resumed = MultiTaskSamplesGenerator.__new__(MultiTaskSamplesGenerator)
        resumed.__dict__.update(generator.__dict__)
        resumed.streams = {t: type(s)(s.size, s.seed, s.task_index) for t, s in generator.streams.items()}
        resumed.sampler = RatioPreservingSampler(list(TASKS), BATCH, seed=0, **algo.sampler_kwargs())
        resumed.load_state_dict(pickle.loads(checkpoint))
        ray.get(resumed.weights_actor.load_state_dict.remote(weights_checkpoint))
        assert prompts_of(next_batch(resumed)) == uninterrupted
    finally:
        ray.kill(ray.get_actor(ACTOR_NAME))
