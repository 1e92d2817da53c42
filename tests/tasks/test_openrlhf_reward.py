"""The OpenRLHF reward function file: loaded and called the way OpenRLHF 0.11.2 does, never raising."""

import asyncio
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import openrlhf_mt.tasks.openrlhf_reward as reward_module
from openrlhf_mt.tasks import get_task

REWARD_FILE = Path(reward_module.__file__)


def _load_like_upstream():
    """openrlhf/utils/agent.py: spec_from_file_location("reward_func", path) and take `reward_func`."""
    spec = importlib.util.spec_from_file_location("reward_func", REWARD_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


reward_func = _load_like_upstream()


def _rows():
    rows = []
    for name in ("tiny-add", "tiny-countdown", "tiny-arc", "countdown-easy", "arc-easy"):
        rows += get_task(name).generate(4, seed=0)
    return rows


def _response(row, kind):
    task = get_task(row["datasource"])
    reference = task.reference_response(row["label"])
    if kind == "correct":
        return reference
    if kind == "wrong":
        if row["datasource"].startswith("tiny"):
            return {"tiny-add": "999", "tiny-countdown": "1+1+1", "tiny-arc": "1111111111"}[row["datasource"]]
        return "\\boxed{1+1}" if "countdown" in row["datasource"] else "\\boxed{nope}"
    return "I give up."


@pytest.mark.parametrize(
    ("kind", "reward", "score"), [("correct", 1.0, 1.0), ("wrong", 0.1, 0.0), ("none", 0.0, 0.0)]
)
def test_per_sample_calls_route_by_task(kind, reward, score):
    for row in _rows():
        query = row["prompt"] + _response(row, kind) + "</s>"
        result = reward_func([query], [row["prompt"]], [row["label"]])
        assert set(result) == {"rewards", "scores", "extra_logs"}
        assert result["rewards"].tolist() == pytest.approx([reward]), (row["datasource"], kind)
        assert result["scores"].tolist() == [score]
        assert set(result["extra_logs"]) == {"accuracy", "reward_failed"}
        assert result["extra_logs"]["reward_failed"].tolist() == [0.0]
        # upstream: info["reward"] = torch.tensor([reward_val]); extra logs via .flatten()[0].item()
        assert torch.tensor([result["rewards"]]).shape == (1,)
        assert result["extra_logs"]["accuracy"].flatten()[0].item() == score


def test_batches_mix_tasks():
    rows = _rows()
    kinds = ["correct", "wrong", "none"] * len(rows)
    queries = [r["prompt"] + _response(r, k) + "<|im_end|>" for r, k in zip(rows, kinds, strict=False)]
    result = reward_func(queries, [r["prompt"] for r in rows], [r["label"] for r in rows])
    expected = [{"correct": 1.0, "wrong": 0.1, "none": 0.0}[k] for k in kinds[: len(rows)]]
    assert result["rewards"].tolist() == pytest.approx(expected)
    assert result["rewards"].dtype == torch.float32 and result["rewards"].shape == (len(rows),)


def test_response_split_when_decoding_changed_the_prompt():
    for name in ("tiny-add", "countdown-easy"):
        task = get_task(name)
        row = task.generate(1, seed=0)[0]
        answer, prompt = task.reference_response(row["label"]), row["prompt"]
        queries = ["<s>" + prompt + answer]  # a BOS token's text
        if len(prompt) > 100:  # a tokenizer round trip changed spacing early in a long prompt
            queries.append(prompt[:20].replace(" ", "  ") + prompt[20:] + answer + "</s></s>")
        for query in queries:
            assert reward_func([query], [prompt], [row["label"]])["rewards"].tolist() == [1.0]
    assert reward_module.split_response("PROMPT answer<|endoftext|></s>", "PROMPT") == " answer"
    # whitespace before the final special tokens stays: the released scorer sees it too
    assert reward_module.split_response("PROMPT answer \n<|endoftext|>", "PROMPT") == " answer \n"
    assert reward_module.strip_trailing_special_tokens("x<｜end▁of▁sentence｜>") == "x"
    assert reward_module.strip_trailing_special_tokens("a <b>") == "a <b>"


@pytest.mark.parametrize(
    ("queries", "prompts", "labels"),
    [
        (["x"], ["x"], ["not json"]),
        (["x"], ["x"], ['{"task": "no-such-task"}']),
        (["x"], ["x"], ['{"task": "countdown-easy"}']),  # no ground truth
        ([None], [None], [None]),
        ([b"bytes"], [3], [{"task": "tiny-add"}]),
        (["a", "b", "c"], ["a"], ['{"task":"tiny-add","target":"1"}']),  # lists of different lengths
    ],
)
def test_failures_score_zero_and_are_counted(queries, prompts, labels):
    result = reward_func(queries, prompts, labels)
    assert result["rewards"].shape == (len(queries),)
    assert result["rewards"].tolist()[-1] == 0.0
    assert result["extra_logs"]["reward_failed"].tolist()[-1] == 1.0


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200), st.text(max_size=50), st.sampled_from([r["label"] for r in _rows()] + ["", "{}"])
)
def test_never_raises(query, prompt, label):
    result = reward_func([query], [prompt], [label])
    assert result["rewards"].item() in (0.0, pytest.approx(0.1), 1.0)


@pytest.mark.slow
def test_upstream_single_turn_executor_end_to_end():
    """OpenRLHF's own SingleTurnAgentExecutor loads this file and scores a fake engine's response."""
    agent = pytest.importorskip("openrlhf.utils.agent")
    row = get_task("countdown-easy").generate(1, seed=0)[0]
    response = "Let me think.\n" + get_task("countdown-easy").reference_response(row["label"])

    class CharTokenizer:  # one token per character; id 0 is EOS
        def __call__(self, text, add_special_tokens=False, return_tensors=None):
            return {"input_ids": torch.tensor([[ord(c) for c in text]])}

        def decode(self, ids, skip_special_tokens=False):
            return "".join(
                "" if i == 0 and skip_special_tokens else "</s>" if i == 0 else chr(i) for i in ids
            )

    class Engine:
        async def generate(self, prompt_ids, params, multi_modal_data=None):
            output = SimpleNamespace(
                token_ids=[ord(c) for c in response] + [0], finish_reason="stop", logprobs=None
            )
            return SimpleNamespace(outputs=[output])

    executor = agent.SingleTurnAgentExecutor(str(REWARD_FILE))
    params = SimpleNamespace(max_tokens=4096, logprobs=None)
    output = asyncio.run(
        executor.execute(row["prompt"], row["label"], params, 8192, CharTokenizer(), Engine())
    )
    assert output["reward"].tolist() == [1.0] and output["scores"].tolist() == [1.0]
    assert output["extra_logs"]["reward_failed"].tolist() == [0.0]
    assert json.loads(output["label"])["task"] == "countdown-easy"
