"""Run config: presets match MTGRPO_SPEC.md §6, YAML and --set overrides load, bad input names the key."""

from __future__ import annotations

import argparse

import pytest

from openrlhf_mt.config import (
    METHOD_PRESETS,
    AlgoConfig,
    ConfigError,
    add_arguments,
    apply_method,
    from_arguments,
    load_config,
)

# MTGRPO_SPEC.md §6: (weighter, zero-gradient filter, clip high, ratio-preserving refill)
SPEC_TABLE = {
    "grpo": ("uniform", "none", 0.2, False),
    "dapo": ("uniform", "strict", 0.28, False),
    "sec-grpo": ("sec", "none", 0.2, False),
    "sec-dapo": ("sec", "strict", 0.28, False),
    "mt-grpo": ("iwu", "strict", 0.28, True),
    "grpo-iwu": ("iwu", "strict", 0.28, False),
    "grpo-rps": ("uniform", "strict", 0.28, True),
    "mt-grpo-reg": ("reg", "strict", 0.28, True),
}


def test_presets_match_the_spec_table():
    assert set(METHOD_PRESETS) == set(SPEC_TABLE)
    for name, (weighter, filter_mode, clip_high, preserve_ratio) in SPEC_TABLE.items():
        cfg = apply_method(name)
        assert (cfg.weighter, cfg.filter_mode, cfg.clip_high, cfg.preserve_ratio) == (
            weighter,
            filter_mode,
            clip_high,
            preserve_ratio,
        ), name
        assert cfg.clip_low == 0.2 and cfg.oversample == 3.0 and cfg.max_rounds == 10
        assert cfg.lr == 0.025 and cfg.improvement_clip == 0.1 and cfg.j_ema_decay == 0.5


def test_weighter_kwargs_build_every_weighter():
    from openrlhf_mt.algo.weights import make_weighter

    tasks = ["a", "b"]
    for name in METHOD_PRESETS:
        cfg = apply_method(name)
        weighter = make_weighter(cfg.weighter, tasks, **cfg.weighter_kwargs())
        assert sorted(weighter.weights()) == tasks
    static = AlgoConfig(weighter="static", static_weights={"a": 3.0, "b": 1.0})
    assert make_weighter("static", tasks, **static.weighter_kwargs()).weights()["a"] == pytest.approx(0.75)
    with pytest.raises(ConfigError, match="static_weights"):
        AlgoConfig(weighter="static").weighter_kwargs()


def test_yaml_then_method_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: mt-grpo\nalgo:\n  lam: 0.25\nrollout:\n  prompts_per_step: 4\n")
    cfg = load_config(path)
    assert (cfg.method, cfg.algo.weighter, cfg.algo.lam, cfg.rollout.prompts_per_step) == (
        "mt-grpo",
        "iwu",
        0.25,
        4,
    )
    cfg = load_config(
        path, method="grpo", overrides=["algo.clip_high=0.3", "data.tasks=[tiny-add]", "seed=7"]
    )
    assert (cfg.method, cfg.algo.weighter, cfg.algo.filter_mode) == ("grpo", "uniform", "none")
    assert (cfg.algo.lam, cfg.algo.clip_high, cfg.data.tasks, cfg.seed) == (0.25, 0.3, ["tiny-add"], 7)


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("algo:\n  lamb: 0.2\n", [], r"algo: unknown key 'lamb'; allowed keys: weighter, .*lam"),
        (
            "",
            ["algo.filter_mode=loose"],
            r"algo.filter_mode: unknown value 'loose'; allowed: strict, lenient, zero_spread, none",
        ),
        ("method: ppo\n", [], r"method: unknown value 'ppo'; allowed: grpo, dapo"),
        ("rollout:\n  prompts_per_step: 2.5\n", [], r"rollout.prompts_per_step: expected an integer"),
        ("train:\n  lr: -1\n", [], r"train.lr: -1.0 must be greater than 0"),
        ("train:\n  lr: fast\n", [], r"train.lr: expected a number, got 'fast'"),
        ("logging:\n  tensorboard: yes please\n", [], r"logging.tensorboard: expected true or false"),
        ("modle:\n  path: x\n", [], r"unknown key 'modle'"),
        ("", ["nonsense"], r"--set 'nonsense': expected section.key=value"),
        ("- a\n- b\n", [], r"expected a mapping"),
        ("algo:\n  signal_source: eval\n", ["eval.every=0"], r"signal_source: eval .* needs eval.every > 0"),
        # numbers that are not numbers, or out of range
        ("", ["algo.lam=.nan"], r"algo.lam: nan is not a finite number"),
        ("", ["algo.lr=.inf"], r"algo.lr: inf is not a finite number"),
        ("", ["algo.lam=-0.1"], r"algo.lam: -0.1 is below the minimum 0.0"),
        ("", ["algo.lr=0"], r"algo.lr: 0.0 must be greater than 0.0"),
        ("", ["train.lr=-.inf"], r"train.lr: -inf is not a finite number"),
        ("", ["algo.clip_low=1.0"], r"algo.clip_low: 1.0 must be less than 1.0"),
        ("", ["algo.clip_high=-0.1"], r"algo.clip_high: -0.1 is below the minimum 0.0"),
        ("", ["algo.improvement_clip=0"], r"algo.improvement_clip: 0.0 must be greater than 0.0"),
        ("", ["algo.rho_decay=1"], r"algo.rho_decay: 1.0 must be less than 1.0"),
        ("", ["algo.j_ema_decay=1"], r"algo.j_ema_decay: 1.0 must be less than 1.0"),
        ("", ["algo.oversample=0.5"], r"algo.oversample: 0.5 is below the minimum 1.0"),
        ("", ["train.adam_betas=[0.9]"], r"train.adam_betas: expected two numbers in \[0, 1\)"),
        ("", ["train.adam_betas=[0.9, 1.0]"], r"train.adam_betas: expected two numbers in \[0, 1\)"),
        ("", ["seed=-1"], r"seed: -1 is below the minimum 0"),
        # zero or negative sizes
        ("", ["rollout.prompts_per_step=0"], r"rollout.prompts_per_step: 0 is below the minimum 1"),
        ("", ["rollout.rollouts_per_prompt=1"], r"rollout.rollouts_per_prompt: 1 is below the minimum 2"),
        ("", ["data.train_size=0"], r"data.train_size: 0 is below the minimum 1"),
        ("", ["train.mini_batches=0"], r"train.mini_batches: 0 is below the minimum 1"),
        ("", ["train.steps=-1"], r"train.steps: -1 is below the minimum 0"),
        ("", ["algo.max_rounds=0"], r"algo.max_rounds: 0 is below the minimum 1"),
        # a batch the mini-batches cannot divide
        (
            "",
            ["rollout.prompts_per_step=2", "rollout.rollouts_per_prompt=2", "train.mini_batches=5"],
            r"train.mini_batches: 5 mini-batches, but a full batch has only .* = 4 samples",
        ),
        # static weights
        ("", ["algo.weighter=static"], r"algo.static_weights: weighter=static needs a task -> weight"),
        (
            "",
            ["algo.weighter=static", "algo.static_weights={tiny-add: 1, tiny-countdown: -1, tiny-arc: 1}"],
            r"algo.static_weights: weights must be >= 0; negative: \{'tiny-countdown': -1.0\}",
        ),
        (
            "",
            ["algo.weighter=static", "algo.static_weights={tiny-add: 0, tiny-countdown: 0, tiny-arc: 0}"],
            r"algo.static_weights: all weights are 0",
        ),
        (
            "",
            ["algo.weighter=static", "algo.static_weights={tiny-add: 1, tiny-countdown: 1, tiny-ark: 1}"],
            r"algo.static_weights: needs exactly one weight per task of data.tasks",
        ),
        ("", ["algo.static_weights={tiny-add: 1}"], r"algo.static_weights: only used with weighter=static"),
        ("", ["algo.reuse_max_age=2", "algo.preserve_ratio=false"], r"algo.reuse_max_age: replaying"),
    ],
)
def test_bad_input_names_the_key(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides=overrides)


def test_flags_for_the_openrlhf_engine():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--mt.lam", "0.5", "--mt.update_every", "step"])
    cfg = from_arguments(args, method="mt-grpo")
    assert (cfg.weighter, cfg.lam, cfg.update_every, cfg.clip_high) == ("iwu", 0.5, "step", 0.28)
    with pytest.raises(ConfigError, match=r"mt.optimizer: unknown value 'rmsprop'; allowed: adam, sgd"):
        from_arguments(parser.parse_args(["--mt.optimizer", "rmsprop"]))


def test_flags_parse_by_the_field_type(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = "--mt.weight_decay 1e-5 --mt.max_rounds 3 --mt.preserve_ratio false --mt.lr 2e-2"
    args = parser.parse_args(flags.split())
    # YAML 1.1 reads "1e-5" (no dot) as a string: the flag must hold the float itself
    assert vars(args)["mt.weight_decay"] == 1e-5 and isinstance(vars(args)["mt.weight_decay"], float)
    cfg = from_arguments(args, method="mt-grpo")
    assert (cfg.weight_decay, cfg.lr, cfg.max_rounds, cfg.preserve_ratio) == (1e-5, 0.02, 3, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mt.weight_decay", "tiny"])
    assert "argument --mt.weight_decay: invalid float value: 'tiny'" in capsys.readouterr().err
