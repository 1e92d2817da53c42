"""`openrlhf-mt tiny-model`: the warmed-up builtin:tiny as a Hugging Face directory, and its refusals."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM, AutoTokenizer

from openrlhf_mt.engines.local.tiny_model import main


def test_writes_a_loadable_model_directory(tmp_path, capsys):
    small = [
        "model.warmup_steps=2",
        "model.warmup_batch_size=4",
        "data.eval_size=2",
        "rollout.max_new_tokens=2",
    ]
    settings = [item for key in small for item in ("--set", key)]
    out = tmp_path / "tiny"
    assert main(["--out", str(out), "--set", f"model.cache_dir={tmp_path / 'cache'}", *settings], "tiny") == 0
    assert "warmed up on tiny-add-easy, tiny-countdown, tiny-countdown-easy" in capsys.readouterr().out
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.hidden_size // model.config.num_attention_heads >= 32  # vLLM-CPU's attention
    assert len(tokenizer("add 36+47=")["input_ids"]) == len("add 36+47=")
    assert json.loads((out / "warmup.json").read_text())["steps"] == 2
    # a second call refuses to overwrite; a config without builtin:tiny is refused too
    assert main(["--out", str(out)], "tiny") == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "x"), "--set", "model.path=/some/model"], "tiny") == 2
    assert "model.path is '/some/model', not builtin:tiny" in capsys.readouterr().err
