"""`openrlhf-mt simulate`: the synthetic MT-GRPO vs DAPO comparison the quickstart runs."""

import pytest

from openrlhf_mt.cli import main as cli_main
from openrlhf_mt.simulate import SyntheticTasks, simulate


def test_synthetic_tasks_give_the_requested_counts_and_zero_gradient_rates():
    generate = SyntheticTasks({"a": 0.8, "b": 0.0}, rollouts=4, seed=0)
    groups = generate({"a": 2000, "b": 50})
    assert [g.task for g in groups].count("a") == 2000 and len(groups) == 2050
    zero_gradient = [len(set(g.rewards)) == 1 for g in groups if g.task == "a"]
    assert sum(zero_gradient) / 2000 == pytest.approx(0.8, abs=0.03)
    assert not any(len(set(g.rewards)) == 1 for g in groups if g.task == "b")


def test_simulation_shows_rps_holding_the_weights_and_dapo_drifting():
    rates = {"hard": 0.7, "easy": 0.1}
    rps = simulate(rates, steps=60, batch_size=64, preserve_ratio=True)
    dapo = simulate(rates, steps=60, batch_size=64, preserve_ratio=False)
    assert abs(rps.mean_share["hard"] - 0.5) < 0.03
    assert dapo.mean_share["hard"] < 0.35  # acceptance 0.3 vs 0.9: about 0.25
    assert rps.mean_rounds >= 1 and dapo.prompts_per_step >= 3 * 64


def test_cli_prints_the_comparison_table_and_plots(capsys, tmp_path):
    argv = ["simulate", "--steps", "20", "--tasks", "4", "--weighter", "iwu", "--batch-size", "32"]
    assert cli_main([*argv, "--plot", str(tmp_path / "shares.png")]) == 0
    out = capsys.readouterr().out
    for text in ("task-1", "task-4", "MT-GRPO (RPS)", "DAPO refill", "rounds/step", "weights: iwu"):
        assert text in out
    assert (tmp_path / "shares.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weights", "1,2"], "--weights has 2 numbers for 3 tasks"),
        (["--weighter", "static"], "--weighter static needs --weights"),
        (["--weights", "1,x,2"], "--weights: expected comma-separated numbers"),
        (["--weights", "1,-2,2"], "static weights must be finite and >= 0"),
        (["--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_cli_rejects_bad_flags_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli_main(["simulate", *argv])
    captured = capsys.readouterr()
    assert message in captured.err + captured.out
