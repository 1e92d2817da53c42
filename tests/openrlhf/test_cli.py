"""`openrlhf-mt train-ray`: upstream's parser plus --mt.*, resolved into the args upstream's train() gets."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")
pytest.importorskip("vllm")

from openrlhf.utils.config import hierarchize

from openrlhf_mt.config import apply_method
from openrlhf_mt.engines.openrlhf.plan import gpu_split
from openrlhf_mt.engines.openrlhf.train_ray import main, parse

PROG = "openrlhf-mt train-ray"

# Paper Exp. 1 (MTGRPO_SPEC.md §4): Qwen2.5-3B, 3 medium tasks, 32 prompts x 72 rollouts, mini-batch of
# 8 prompts, lr 1e-6 constant, AdamW (0.9, 0.99), clip 1.0, 720 steps, eval every 10 steps with 8 samples
# at T = 1.0, on 2 GPUs (actor and vLLM colocated), MT-GRPO with lambda = 0.25.
EXP1 = """
--actor.model_name_or_path Qwen/Qwen2.5-3B
--data.prompt_dataset data/exp1/train.jsonl --eval.dataset data/exp1/test.jsonl
--actor.num_nodes 1 --actor.num_gpus_per_node 2 --vllm.num_engines 2 --vllm.tensor_parallel_size 1
--train.colocate_all --vllm.enable_sleep --ds.enable_sleep --vllm.gpu_memory_utilization 0.5
--ds.zero_stage 3 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable
--rollout.batch_size 32 --rollout.n_samples_per_prompt 72 --train.batch_size 576
--rollout.micro_batch_size 8 --train.micro_batch_size 4
--data.max_len 5120 --rollout.max_new_tokens 4096 --rollout.temperature 1.0
--actor.adam.lr 1e-6 --actor.adam.betas 0.9 0.99 --actor.lr_scheduler constant --actor.lr_warmup_ratio 0
--actor.max_norm 1.0 --eval.steps 10 --eval.n_samples_per_prompt 8 --eval.temperature 1.0
--ckpt.path ckpt/exp1_mt_grpo --ckpt.save_steps 20 --logger.tensorboard_dir runs/exp1_mt_grpo
--mt.method mt-grpo --mt.lam 0.25 --mt.weight_decay 1.0e-5 --mt.max_rounds 10 --mt.max_steps 720
"""


def args_of(command: str) -> argparse.Namespace:
    return parse(shlex.split(command), PROG)


def test_a_full_exp1_command_line_gives_the_expected_args() -> None:
    ns = args_of(EXP1)
    args = hierarchize(argparse.Namespace(**vars(ns)))
    assert args.mt.algo == dataclasses.replace(apply_method("mt-grpo"), lam=0.25, weight_decay=1e-5)
    assert (args.mt.method, args.mt.max_steps, args.mt.cpu, args.mt.dry_run) == ("mt-grpo", 720, False, False)
    # MT-GRPO's defaults for upstream flags the command line left out
    assert args.algo.advantage.estimator == "group_norm"
    assert args.actor.eps_clip_low_high == [0.2, 0.28]
    assert args.algo.kl.init_coef == 0.0
    assert (args.data.input_key, args.data.label_key) == ("prompt", "label")
    assert args.reward.remote_url.endswith("openrlhf_mt/tasks/openrlhf_reward.py")
    # upstream flags as given
    assert (args.rollout.batch_size, args.rollout.n_samples_per_prompt, args.train.batch_size) == (
        32,
        72,
        576,
    )
    assert args.actor.adam.betas == [0.9, 0.99] and args.actor.adam.lr == 1e-6
    assert (args.ds.zero_stage, args.vllm.num_engines, args.train.colocate_all) == (3, 2, True)
    assert gpu_split(args).total == 2
    assert not hasattr(args.mt, "lam")  # the raw --mt.* fields live in args.mt.algo only


def test_user_flags_win_over_the_mt_defaults() -> None:
    ns = vars(
        args_of(EXP1 + " --actor.eps_clip_low_high 0.1 0.3 --algo.kl.init_coef 0.01 --reward.remote_url r.py")
    )
    assert ns["actor.eps_clip_low_high"] == [0.1, 0.3]
    assert ns["algo.kl.init_coef"] == 0.01
    assert ns["reward.remote_url"] == "r.py"


def test_grpo_preset_uses_symmetric_clipping() -> None:
    assert vars(args_of(EXP1 + " --mt.method grpo"))["actor.eps_clip_low_high"] == [0.2, 0.2]


def test_cpu_defaults_give_one_rank_per_model() -> None:
    ns = vars(args_of("--actor.model_name_or_path m --data.prompt_dataset d.jsonl --mt.cpu"))
    assert (ns["actor.num_gpus_per_node"], ns["vllm.num_engines"], ns["vllm.sync_backend"]) == (1, 1, "gloo")
    assert (ns["ds.attn_implementation"], ns["vllm.enforce_eager"]) == ("sdpa", True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--mt.lam -1", "--mt.lam: -1.0 is below the minimum 0.0"),
        ("--mt.lam abc", "argument --mt.lam: invalid float value: 'abc'"),
        ("--mt.max_rounds 2.5", "argument --mt.max_rounds: invalid int value: '2.5'"),
        ("--mt.weighter best", "--mt.weighter: unknown value 'best'; allowed: uniform, static, iwu"),
        ("--mt.method mtgrpo", "argument --mt.method: invalid choice: 'mtgrpo'"),
        ("--algo.dynamic_filtering_enable", "--algo.dynamic_filtering_enable: MT-GRPO filters"),
        ("--mt.cpu --ds.packing_samples", "--ds.packing_samples: not available with --mt.cpu"),
        ("--mt.lamb 0.2", "unrecognized arguments: --mt.lamb 0.2"),
        ("--mt.preserve_ratio maybe", "--mt.preserve_ratio: expected true or false, got 'maybe'"),
        ("--mt.lam nan", "--mt.lam: nan is not a finite number"),
        ("--mt.lr inf", "--mt.lr: inf is not a finite number"),
        ("--mt.clip_low 1.5", "--mt.clip_low: 1.5 must be less than 1.0"),
        ("--mt.weighter static", "--mt.static_weights: weighter=static needs a task -> weight mapping"),
        ("--mt.weighter static --mt.static_weights '{a: -1, b: 2}'", "weights must be >= 0"),
        ("--mt.weighter static --mt.static_weights '{a: 0, b: 0}'", "all weights are 0"),
        ("--rollout.batch_size 0", "--rollout.batch_size: 0 is below the minimum 1"),
        ("--train.micro_batch_size 0", "--train.micro_batch_size: 0 is below the minimum 1"),
        ("--actor.num_gpus_per_node 0", "--actor.num_gpus_per_node: 0 is below the minimum 1"),
        ("--actor.adam.lr=-1e-6", "--actor.adam.lr: -1e-06 must be a number > 0"),
        ("--actor.adam.lr nan", "--actor.adam.lr: nan must be a number > 0"),
        ("--actor.eps_clip_low_high 1.2 0.3", "--actor.eps_clip_low_high (low): 1.2 must be in [0, 1)"),
        ("--rollout.top_p 0", "--rollout.top_p: 0.0 must be in (0, 1]"),
        ("--rollout.temperature 0", "--rollout.temperature: 0.0 must be a number > 0"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_flag(
    extra: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        args_of(EXP1 + " " + extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_path_flags_become_absolute_so_that_actors_on_other_nodes_find_them(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("")
    args = hierarchize(
        argparse.Namespace(
            **vars(
                args_of(
                    "--actor.model_name_or_path Qwen/Qwen2.5-3B --data.prompt_dataset "
                    "data/train.jsonl,OpenRLHF/some-hub-dataset --ckpt.path ckpt/run "
                    "--logger.tensorboard_dir runs/tb"
                )
            )
        )
    )
    assert args.ckpt.path == str(tmp_path / "ckpt" / "run")
    assert args.ckpt.output_dir == str(tmp_path / "ckpt")  # upstream's default, ./ckpt
    assert args.logger.tensorboard_dir == str(tmp_path / "runs" / "tb")
    assert args.data.prompt_dataset == f"{tmp_path}/data/train.jsonl,OpenRLHF/some-hub-dataset"
    assert args.actor.model_name_or_path == "Qwen/Qwen2.5-3B"  # a hub name, not a local path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (  # 5 x 4 = 20 samples over 2 ranks in micro-batches of 4: 10 per rank, not whole micro-batches
            "--actor.num_gpus_per_node 2 --rollout.batch_size 5 --rollout.n_samples_per_prompt 4 "
            "--train.micro_batch_size 4 --train.batch_size 16",
            "--rollout.batch_size 5 x --rollout.n_samples_per_prompt 4 = 20 samples do not split evenly "
            "over 2 data-parallel rank(s) (--actor.num_nodes 1 x --actor.num_gpus_per_node 2) in "
            "micro-batches of --train.micro_batch_size 4 (a multiple of 8 samples is needed): "
            "use --rollout.batch_size 6",
        ),
        (
            "--actor.num_gpus_per_node 2 --rollout.batch_size 6 --rollout.n_samples_per_prompt 4 "
            "--train.micro_batch_size 4 --train.batch_size 12",
            "--train.batch_size: 12 samples per optimizer step do not split over 2 data-parallel rank(s)",
        ),
    ],
)
def test_a_batch_that_cannot_split_over_the_ranks_is_refused_before_anything_starts(
    flags: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        args_of("--actor.model_name_or_path m --data.prompt_dataset d.jsonl " + flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_six_prompts_on_two_ranks_split_evenly_although_upstream_would_not() -> None:
    """6 x 4 = 24 samples in rollout micro-batches of 8 are 3 micro-batches: upstream gives the 2 ranks 2
    and 1 (a hang). The even split gives each rank 12 samples in 2 micro-batches of 6."""
    from openrlhf_mt.engines.openrlhf.trainer import even_rank_chunks

    args = hierarchize(
        argparse.Namespace(
            **vars(
                args_of(
                    "--actor.model_name_or_path m --data.prompt_dataset d.jsonl --actor.num_gpus_per_node 2 "
                    "--rollout.batch_size 6 --rollout.n_samples_per_prompt 4 --rollout.micro_batch_size 8 "
                    "--train.micro_batch_size 4 --train.batch_size 8"
                )
            )
        )
    )
    assert args.rollout.batch_size == 6  # accepted
    assert even_rank_chunks(24, 2, 8) == [(0, 6), (6, 12), (12, 18), (18, 24)]
    assert even_rank_chunks(24, 1, 8) == [(0, 8), (8, 16), (16, 24)]
    assert even_rank_chunks(20, 2, 8) == [(0, 5), (5, 10), (10, 15), (15, 20)]
    with pytest.raises(ValueError, match="do not split over 2"):
        even_rank_chunks(21, 2, 8)


def test_without_cuda_or_cluster_the_command_asks_for_mt_cpu(monkeypatch, capsys) -> None:
    import torch

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["--actor.model_name_or_path", "m", "--data.prompt_dataset", "d.jsonl"], PROG) == 2
    assert "no CUDA device and no Ray cluster (RAY_ADDRESS); add --mt.cpu" in capsys.readouterr().err


def test_help_shows_upstream_and_mt_flags(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"], PROG)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {PROG}")
    for flag in (
        "--actor.model_name_or_path",
        "--rollout.n_samples_per_prompt",
        "--mt.method",
        "--mt.lam",
        "--mt.cpu",
    ):
        assert flag in out


def test_every_paper_example_script_parses(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/exp*_*.sh -> openrlhf_paper.sh -> `openrlhf-mt train-ray ...`: the command they run parses."""
    import os
    import subprocess
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    fake = tmp_path / "bin" / "openrlhf-mt"  # prints its arguments instead of training
    fake.parent.mkdir()
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    for exp in ("exp1", "exp2"):
        (tmp_path / exp).mkdir()
        (tmp_path / exp / "train.jsonl").write_text("")
    scripts = sorted(examples.glob("exp[12]_*.sh"))
    assert len(scripts) == 22  # Exp. 1: 11 runs, Exp. 2: 11 runs (as released, plus the two ablations)
    for script in scripts:
        exp = script.name[:4]
        env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "DATA": str(tmp_path / exp)}
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True)
        argv = done.stdout.splitlines()
        assert argv[0] == "train-ray"
        args = hierarchize(argparse.Namespace(**vars(parse(argv[1:], PROG))))
        assert args.mt.max_steps == 720 and args.ckpt.path == os.path.abspath(f"runs/{script.stem}/ckpt")
        assert args.mt.algo.filter_mode == (
            "strict" if exp == "exp1" else "lenient"
        ) or args.mt.method.endswith("grpo")
        _check_released_settings(script.stem, args)


def _check_released_settings(name: str, args: argparse.Namespace) -> None:
    """The released launch scripts' settings (docs/parity.md), script by script."""
    algo, method = args.mt.algo, args.mt.method
    assert algo.acceptance_aware is name.startswith("exp2")  # AAS: Exp. 2 scripts only
    released_rps_from_10 = method == "mt-grpo-reg" or (name.startswith("exp2") and method == "mt-grpo")
    assert algo.ratio_from_step == (10 if released_rps_from_10 else 1), name
    if name.startswith("exp2_mt_grpo_lam"):
        assert algo.improvement_clip == (0.1 if name.endswith("lam0.3") else 0.2), name
    if method == "sec-dapo":
        assert algo.max_rounds == 10, name
    if method == "grpo-iwu":
        assert algo.lam == 0.25
    if method == "mt-grpo-reg":
        assert algo.eta == float(name.rpartition("eta")[2]), name
    assert tuple(args.actor.adam.betas) == (0.9, 0.999) and args.actor.adam.weight_decay == 0.01


def _rows_file(path, *records: dict) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


ROW = {"prompt": "add 1+2=", "label": '{"task":"tiny-add","target":"3"}'}
ARC_ROW = {"prompt": "arc 1>1;2>", "label": '{"task":"tiny-arc","target":"2"}'}


def test_local_data_files_are_validated_before_anything_starts(tmp_path, capsys) -> None:
    base = f"--actor.model_name_or_path m --ckpt.path {tmp_path / 'ckpt'} --rollout.n_samples_per_prompt 2"
    bad = _rows_file(tmp_path / "bad.jsonl", ROW, {"prompt": "p"}, ARC_ROW)
    with pytest.raises(SystemExit) as exit_info:
        args_of(f"{base} --data.prompt_dataset {bad}")
    assert exit_info.value.code == 2
    assert "bad.jsonl, line 2: field 'label' missing or not text" in capsys.readouterr().err
    ns = vars(args_of(f"{base} --data.prompt_dataset {bad} --mt.skip_bad_rows"))
    assert ns["mt.data_rows_skipped"] == 1
    assert ns["data.prompt_dataset"] == str(tmp_path / "ckpt" / "valid_rows" / "bad.jsonl")
    valid = Path(ns["data.prompt_dataset"]).read_text().splitlines()
    assert [json.loads(line) for line in valid] == [
        {**ROW, "datasource": "tiny-add"},
        {**ARC_ROW, "datasource": "tiny-arc"},
    ]
    assert "skipped 1 bad row(s) (--mt.skip_bad_rows)" in capsys.readouterr().out


def test_static_weights_must_name_the_tasks_of_the_prompt_data(tmp_path, capsys) -> None:
    good = _rows_file(tmp_path / "good.jsonl", ROW, ARC_ROW)
    base = f"--actor.model_name_or_path m --data.prompt_dataset {good} --rollout.n_samples_per_prompt 2"
    weights = "--mt.weighter static --mt.static_weights"
    assert vars(args_of(f"{base} {weights} '{{tiny-add: 1, tiny-arc: 2}}'"))["mt.data_rows_skipped"] == 0
    with pytest.raises(SystemExit):
        args_of(f"{base} {weights} '{{tiny-add: 1, tiny-countdown: 2}}'")
    assert (
        "--mt.static_weights: needs exactly one weight per task of the prompt data ['tiny-add', 'tiny-arc']"
        in capsys.readouterr().err
    )
