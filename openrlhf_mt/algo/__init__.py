"""The engine-free MT-GRPO core (numpy/torch only): what both engines call, so both behave the same.

    types.py       Group(task, rewards, payload), TaskStats(reward, improvement, mean_abs_advantage)
    filters.py     is_zero_gradient / zero_gradient_mask: "strict", "lenient", "none" (MTGRPO_SPEC.md §3)
    advantages.py  group_advantages: (r - mean) / (std + 1e-6), unbiased std; or r - mean
    loss.py        clipped_objective (per-token clipped surrogate), per_sample_mean, sample_objective (I_k's)
    weights.py     make_weighter("uniform" | "static" | "iwu" | "strict" | "reg" | "sec", tasks, **kwargs)
    signals.py     RewardEMA (J_k), per_task_improvement (I_k), per_task_mean_abs_advantage, task_stats
    updates.py     WeightUpdates: when a weighter steps and on which signals (both engines' schedule)
    sampler.py     RatioPreservingSampler.build_batch(weights, generate) -> (groups, BatchInfo)
    replay.py      the per-task buffer of accepted groups beyond a step's quota (off by default)

One training step of an engine, with the paper's update_every=minibatch:

    groups, info = sampler.build_batch(weighter.weights(), generate)      # generate(counts) -> list[Group]
    for accuracy in info.accuracy_per_round:
        reward_ema.update(accuracy)                                      # J_k
    updates = WeightUpdates(weighter, reward_ema.values, every="minibatch")   # made once per run
    for mini_batch in ppo_mini_batches(groups):
        ...record sample_objective, optimizer step, recompute it without grad...
        improvement = per_task_improvement(task_of_sample, objective_before, objective_after)   # I_k
        updates.observe_minibatch(improvement, abs_advantage_sum, sample_count)   # steps the weighter
    updates.end_step()
    log(info.to_metrics(), weighter.diagnostics)
"""
