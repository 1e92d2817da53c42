"""The TRL benchmark's work-matching check (benchmarks/bench_trl.py): it must accept runs that did the same
work and name every kind of difference. TRL itself never runs in the test suite."""

from benchmarks.bench_trl import work_differences


def step(sequences=128, optimizer_steps=4, prompt_tokens=3680, response_tokens=800):
    return {
        "sequences": sequences,
        "optimizer_steps": optimizer_steps,
        "prompt_tokens": prompt_tokens,
        "response_tokens": response_tokens,
    }


def test_same_work_passes_with_sampled_response_lengths():
    ours = [step(prompt_tokens=3680, response_tokens=800), step(prompt_tokens=1792, response_tokens=760)]
    trl = [step(prompt_tokens=3680, response_tokens=770), step(prompt_tokens=1792, response_tokens=820)]
    assert work_differences(ours, trl) == []


def test_each_kind_of_difference_is_named():
    ours = [step(), step()]
    assert "sequences" in work_differences(ours, [step(), step(sequences=64)])[0]
    assert "optimizer_steps" in work_differences(ours, [step(optimizer_steps=1), step()])[0]
    # the same totals but other prompts in each step: prompts are compared step by step
    assert (
        "prompt_tokens"
        in work_differences(
            [step(prompt_tokens=100), step(prompt_tokens=200)],
            [step(prompt_tokens=200), step(prompt_tokens=100)],
        )[0]
    )
    assert (
        "response tokens"
        in work_differences(ours, [step(response_tokens=1000), step(response_tokens=1000)])[0]
    )
    assert "steps" in work_differences(ours, [step()])[0]
