"""The hand-written KV-cache sampler and the training log-probs against transformers' own code paths."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from openrlhf_mt.engines.local.model import build_tiny, character_tokenizer, load_policy, resolve_device
from openrlhf_mt.engines.local.rollout import pack, response_logprobs, sample


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    directory = build_tiny(tmp_path_factory.mktemp("tiny"), seed=0)
    return load_policy(directory, torch.device("cpu"), torch.float32)


PRINTABLE = "".join(chr(c) for c in range(32, 127)) + "\n"


@pytest.fixture(scope="module")
def reloaded_tokenizer(tmp_path_factory):
    """The tokenizer as every run sees it: saved beside a Qwen2 config, loaded by AutoTokenizer."""
    return AutoTokenizer.from_pretrained(build_tiny(tmp_path_factory.mktemp("tiny_tokenizer")))


def test_character_tokenizer_round_trips_through_save_and_auto_tokenizer(tmp_path, reloaded_tokenizer):
    bare = tmp_path / "bare"  # without a model config AutoTokenizer picks another class: both must work
    character_tokenizer().save_pretrained(bare)
    text = "cd 6,7,2>3: (2+7)-6\narc 0059>0099; add 36+47=" + PRINTABLE
    for loaded in (AutoTokenizer.from_pretrained(bare), reloaded_tokenizer):
        ids = loaded(text)["input_ids"]
        assert len(ids) == len(text)  # one token per character
        assert loaded.decode(ids) == text
        assert loaded.eos_token == "</s>" and loaded.pad_token == "<pad>"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=PRINTABLE))
@example(text="<pad>")  # special tokens spelled out in text stay characters (hypothesis once found this)
@example(text="a</s>b<s><unk>")
def test_reloaded_character_tokenizer_is_exact_on_printable_ascii(reloaded_tokenizer, text):
    ids = reloaded_tokenizer(text)["input_ids"]
    assert len(ids) == len(text)
    assert reloaded_tokenizer.decode(ids) == text
    assert reloaded_tokenizer.batch_decode([ids], skip_special_tokens=True) == [text]


def test_greedy_sampling_matches_model_generate(policy):
    model, tokenizer = policy.model, policy.tokenizer
    prompts = ["add 12+34=", "arc 0059993900>0099999900;04247>", "cd 1,2,3>6:"]
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    ours = sample(
        model, ids, n=2, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
        max_new_tokens=8, temperature=0.0, top_p=1.0, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert len(ours) == 6 and ours[0] == ours[1] and ours[2] == ours[3]
    for prompt, response in zip(ids, ours[::2], strict=True):  # one prompt at a time: no padding at all
        reference = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=8, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(prompt):].tolist()  # fmt: skip
        if tokenizer.eos_token_id in reference:
            reference = reference[: reference.index(tokenizer.eos_token_id) + 1]
        assert response == reference


def test_sampling_is_seeded_and_top_p_keeps_the_top_token(policy):
    model, tokenizer = policy.model, policy.tokenizer
    ids = [tokenizer("add 40+2=")["input_ids"]] * 2
    kwargs = {"eos_id": tokenizer.eos_token_id, "pad_id": tokenizer.pad_token_id, "max_new_tokens": 6}
    first = sample(
        model, ids, n=3, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(5), **kwargs
    )
    again = sample(
        model, ids, n=3, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(5), **kwargs
    )
    assert first == again and len(first) == 6
    greedy = sample(model, ids, n=1, temperature=0.0, top_p=1.0, generator=torch.Generator(), **kwargs)
    tiny_p = sample(
        model, ids, n=3, temperature=1.0, top_p=1e-6, generator=torch.Generator().manual_seed(1), **kwargs
    )
    assert all(r == greedy[0] for r in tiny_p)  # a nucleus this small is just the most likely token


def test_response_logprobs_do_not_depend_on_padding(policy):
    model, tokenizer = policy.model, policy.tokenizer
    prompts = [tokenizer(p)["input_ids"] for p in ["add 1+2=", "arc 0059993900>0099999900;"]]
    responses = [tokenizer("3")["input_ids"] + [tokenizer.eos_token_id], tokenizer("0099999900")["input_ids"]]
    batch = pack(prompts, responses, tokenizer.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        together = response_logprobs(model, batch, temperature=0.7)
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            alone = pack([prompt], [response], tokenizer.pad_token_id, torch.device("cpu"))
            single = response_logprobs(model, alone, temperature=0.7)[0]
            # the same log-probs with and without left/right padding, from an unpadded full forward too
            logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1].double() / 0.7
            full = torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None])[:, 0]
            assert torch.allclose(together[i, : len(response)], single[: len(response)], atol=1e-5)
            assert torch.allclose(single[: len(response)].double(), full, atol=1e-5)
    assert batch.response_mask.sum(-1).tolist() == [len(r) for r in responses]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_config_error_naming_the_key():
    with pytest.raises(ValueError, match=r"model\.device"):
        resolve_device("cuda", "auto")
    assert resolve_device("auto", "auto") == (torch.device("cpu"), torch.float32)
