"""Task weighters: the distribution z over tasks that the sampler fills batches with (MTGRPO_SPEC.md §2, §6).

Every weighter has the same surface, so engines never branch on the method:

    w = make_weighter(name, tasks, **kwargs)   # name: "uniform" | "static" | "iwu" | "strict" | "reg" | "sec"
    w.weights() -> dict[str, float]            # a distribution over exactly `tasks`, in `tasks` order
    w.update(stats: dict[str, TaskStats]) -> dict[str, float]   # one step; returns the new weights()
    w.diagnostics: dict[str, float]            # what the last update saw, flat "<field>/<task>" keys
    w.state_dict() -> dict; w.load_state_dict(sd)               # plain lists and floats: exact resume

    UniformWeighter(tasks)
    StaticWeighter(tasks, weights: Mapping[str, float])
    IWUWeighter(tasks, lr=0.025, lam=0.2, improvement_clip=0.1, weight_decay=0.0, optimizer="sgd")
    StrictWeighter(tasks, lr=0.025, weight_decay=0.0, optimizer="sgd")
    RegularizedWeighter(tasks, lr=0.025, eta=1e-2, lam=1.0, optimizer="sgd")
    SECWeighter(tasks, alpha=0.5, temperature=0.2, absent_arms="decay")

Which TaskStats field each one reads: IWU reads `reward` (J_k) and `improvement` (I_k); strict and reg read
`reward`; SEC reads `mean_abs_advantage`; uniform and static read nothing (they still validate the stats).

The three logit-descent weighters (iwu, strict, reg) keep logits xi (start 0: uniform), z = softmax(xi), and
step xi with the gradient of sum_k z_k s_k through the softmax, g_k = z_k (s_k - sum_j z_j s_j), so tasks
with a low score s_k gain weight. They differ only in the score s_k. The step is torch's SGD or Adam with
coupled L2 weight decay (grad += weight_decay * xi), re-implemented task by task in Python floats (float64;
with K a handful of tasks, cheaper than numpy's per-call cost) and tested against torch.optim step for step.
The state (logits, Adam moments, step counts) is kept as lists of plain floats/ints in `tasks` order.

IWU calls update() once per PPO mini-batch in the released code (4 per training step in the paper's runs)
or once per training step in the paper's text: that is the engine's `update_every` choice; the weighter
just takes one step per call. The released code passes every task each time, with I_k = 0 for a task that
has no sample in the mini-batch; `signals.task_stats(reward_ema.values(), improvement)` does the same.

Tasks absent from `stats` (say, no sample of theirs in this mini-batch) keep their logit, and for Adam their
moment estimates and step count, unchanged. For the others the baseline is the present tasks' weighted mean
score, sum_{j present} z_j s_j / sum_{j present} z_j: this is exactly the paper's gradient if each absent
task is given that neutral mean score, it gives g_k = 0 for absent tasks, and it reduces to the paper's
formula when every task is present. The weights stay a distribution over all configured tasks.

Bad stats raise a ValueError naming the task and field (unknown task, NaN or inf); a rejected update leaves
the weighter unchanged, so weights are never NaN.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar

import numpy as np

from openrlhf_mt.algo.types import TaskStats, check_state_tasks

OPTIMIZERS = ("sgd", "adam")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
STAT_FIELDS = tuple(f.name for f in fields(TaskStats))


def softmax(logits: Sequence[float], temperature: float = 1.0) -> list[float]:
    """z = softmax(xi / T), shifted by max(xi) first so that huge logits or a small T cannot overflow.

    In plain floats: for a handful of tasks the loop costs less than one numpy call."""
    top = max(logits)
    shifted = [math.exp((x - top) / temperature) for x in logits]  # (x - top) / T may be -inf: exp is 0
    total = sum(shifted)
    return [x / total for x in shifted]


class TaskWeighter:
    """Base class: holds the task list and validates stats; subclasses say what the distribution is."""

    name: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ()  # the TaskStats fields update() uses; () = the weights never move
    update_every: ClassVar[str | None] = None  # a fixed schedule ("step"), else the engine's `update_every`

    def __init__(self, tasks: Sequence[str]) -> None:
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError(f"{type(self).__name__}: needs at least one task")
        if not all(isinstance(t, str) and t for t in tasks):
            raise ValueError(
                f"{type(self).__name__}: task names must be non-empty strings, got {list(tasks)}"
            )
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"{type(self).__name__}: task names repeat: {list(tasks)}")
        self.tasks = tasks
        self.index = {task: i for i, task in enumerate(tasks)}
        self.last_update: dict[str, dict[str, float]] = {}  # field -> task -> value, for `diagnostics`

    @property
    def diagnostics(self) -> dict[str, float]:
        """What the last update saw, as flat "<field>/<task>" keys (built when read: engines log once per
        step, while IWU updates once per mini-batch)."""
        return {
            f"{field}/{task}": value
            for field, values in self.last_update.items()
            for task, value in values.items()
        }

    def distribution(self) -> list[float]:
        """The weights in `tasks` order, as plain floats (what weights() and probabilities() read)."""
        raise NotImplementedError

    def probabilities(self) -> np.ndarray:
        """The weights as a float64 array in `tasks` order."""
        return np.array(self.distribution())

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.distribution(), strict=True))

    def update(self, stats: Mapping[str, TaskStats]) -> dict[str, float]:
        self.check_stats(stats)
        self.last_update = {}
        return self.weights()

    def check_stats(self, stats: Mapping[str, TaskStats]) -> None:
        """Raise a ValueError naming the task and field for unknown tasks or non-finite values."""
        if not isinstance(stats, Mapping):
            raise TypeError(
                f"{self.name} weighter: stats must be a dict task -> TaskStats, got {type(stats)}"
            )
        for task, task_stats in stats.items():
            if task not in self.index:
                raise ValueError(
                    f"{self.name} weighter: stats for unknown task {task!r}; tasks: {list(self.tasks)}"
                )
            if not isinstance(task_stats, TaskStats):
                raise TypeError(
                    f"{self.name} weighter: stats[{task!r}] must be a TaskStats, got {type(task_stats)}"
                )
            if math.isfinite(task_stats.reward + task_stats.improvement + task_stats.mean_abs_advantage):
                continue  # the common case; a finite sum can only mean finite fields
            for name in STAT_FIELDS:
                value = getattr(task_stats, name)
                if not math.isfinite(value):
                    raise ValueError(
                        f"{self.name} weighter: stats[{task!r}].{name} is {value}; must be finite"
                    )

    def state_dict(self) -> dict[str, Any]:
        # the last update's diagnostics too: a resumed run logs what the uninterrupted one would, also
        # on a step whose batch made no update
        last_update = {field: dict(values) for field, values in self.last_update.items()}
        return {"name": self.name, "tasks": list(self.tasks), "last_update": last_update}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state_dict is for a {state.get('name')!r} weighter, this one is {self.name!r}")
        check_state_tasks(f"{self.name} weighter", state.get("tasks", ()), self.tasks)
        self.last_update = {field: dict(values) for field, values in state["last_update"].items()}


class UniformWeighter(TaskWeighter):
    """GRPO / DAPO baselines: z_k = 1/K forever."""

    name = "uniform"

    def distribution(self) -> list[float]:
        return [1.0 / len(self.tasks)] * len(self.tasks)


class StaticWeighter(TaskWeighter):
    """User-fixed weights: one non-negative number per task, renormalised to sum to 1."""

    name = "static"

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float]) -> None:
        super().__init__(tasks)
        unknown = sorted(set(weights) - set(self.tasks))
        missing = [t for t in self.tasks if t not in weights]
        if unknown or missing:
            raise ValueError(
                f"static weights: unknown tasks {unknown}, tasks without a weight {missing}; "
                f"tasks: {list(self.tasks)}"
            )
        raw = np.array([float(weights[t]) for t in self.tasks])
        bad = [t for t, w in zip(self.tasks, raw, strict=True) if not (math.isfinite(w) and w >= 0)]
        if bad:
            raise ValueError(f"static weights must be finite and >= 0; bad for {bad}: {dict(weights)}")
        if raw.sum() <= 0:
            raise ValueError(f"static weights are all zero: {dict(weights)}")
        self._distribution = (raw / raw.sum()).tolist()

    def distribution(self) -> list[float]:
        return list(self._distribution)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weights": self.distribution()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if not np.allclose(state["weights"], self._distribution, rtol=0, atol=1e-12):
            raise ValueError(
                f"static weights differ from the checkpoint's: {state['weights']} vs {self.weights()}"
            )


class LogitDescentWeighter(TaskWeighter):
    """Shared machinery of iwu/strict/reg: z = softmax(xi), xi <- optimizer step on g = dz/dxi^T s."""

    def __init__(self, tasks: Sequence[str], lr: float, weight_decay: float, optimizer: str) -> None:
        super().__init__(tasks)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{self.name} weighter: lr must be > 0, got {lr}")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"{self.name} weighter: weight_decay must be >= 0, got {weight_decay}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"{self.name} weighter: unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}"
            )
        self.lr, self.weight_decay, self.optimizer = float(lr), float(weight_decay), optimizer
        num_tasks = len(self.tasks)
        # logits, then Adam moments and per-task step counts (absent tasks do not step; all-present is
        # exactly torch.optim.Adam)
        self.set_state([0.0] * num_tasks, [0.0] * num_tasks, [0.0] * num_tasks, [0] * num_tasks)

    def set_state(
        self, logits: list[float], exp_avg: list[float], exp_avg_sq: list[float], steps: list[int]
    ) -> None:
        """Replace the optimizer state; z = softmax(xi) is computed here once, not on every read."""
        self.logits, self.exp_avg, self.exp_avg_sq, self.steps = logits, exp_avg, exp_avg_sq, steps
        self._distribution = softmax(logits)

    def distribution(self) -> list[float]:
        return list(self._distribution)

    def check_lam(self, lam: float) -> float:
        """The weight lam of J_k in the score (iwu, reg), as a float; a clear error unless finite and >= 0."""
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"{self.name} weighter: lam must be >= 0, got {lam}")
        return float(lam)

    def scores(self, stats: Sequence[TaskStats]) -> list[float]:
        """s_k for the present tasks, in the order given."""
        raise NotImplementedError

    def softmax_gradient(self, present: list[int], scores: list[float]) -> list[float]:
        """Subroutine 1, line 2: g_k = z_k (s_k - sum_j z_j s_j), over the present tasks (see module doc)."""
        distribution = self.distribution()
        z = [distribution[k] for k in present]
        present_weight = sum(z)
        if present_weight == 0:  # the present tasks' weights underflowed: their gradient is 0 either way
            return [0.0] * len(present)
        baseline = sum(z_k * s_k for z_k, s_k in zip(z, scores, strict=True)) / present_weight
        return [z_k * (s_k - baseline) for z_k, s_k in zip(z, scores, strict=True)]

    def step(self, present: list[int], gradient: list[float]) -> tuple[list, ...]:
        """Subroutine 1, line 3: xi <- xi - beta*g (SGD) or torch Adam's step; both with coupled L2 decay.

        Steps each present task's logit with its gradient (torch.optim's operations, in its order; plain
        floats, as K is small). Returns the new (logits, exp_avg, exp_avg_sq, steps); absent tasks keep all
        four unchanged."""
        logits, exp_avg, exp_avg_sq = list(self.logits), list(self.exp_avg), list(self.exp_avg_sq)
        steps = list(self.steps)
        beta1, beta2 = ADAM_BETAS
        for k, task_gradient in zip(present, gradient, strict=True):
            grad = task_gradient + self.weight_decay * logits[k]
            if self.optimizer == "sgd":
                logits[k] -= self.lr * grad
                continue
            steps[k] += 1
            exp_avg[k] += (1 - beta1) * (grad - exp_avg[k])  # torch's lerp_
            exp_avg_sq[k] = beta2 * exp_avg_sq[k] + (1 - beta2) * grad * grad
            bias_correction1 = 1 - beta1 ** steps[k]
            bias_correction2 = 1 - beta2 ** steps[k]
            denom = math.sqrt(exp_avg_sq[k]) / math.sqrt(bias_correction2) + ADAM_EPS
            logits[k] -= (self.lr / bias_correction1) * exp_avg[k] / denom
        return logits, exp_avg, exp_avg_sq, steps

    def update(self, stats: Mapping[str, TaskStats]) -> dict[str, float]:
        self.check_stats(stats)
        self.last_update = {}
        present = [k for k, task in enumerate(self.tasks) if task in stats]
        if not present:
            return self.weights()
        present_tasks = [self.tasks[k] for k in present]
        scores = self.scores([stats[t] for t in present_tasks])
        gradient = self.softmax_gradient(present, scores)  # float overflow gives inf or nan, caught here:
        if not all(map(math.isfinite, gradient)):
            raise ValueError(f"{self.name} weighter: scores {scores} overflow the gradient; rescale them")
        new_state = self.step(present, gradient)
        if not all(map(math.isfinite, new_state[0])):
            raise ValueError(f"{self.name} weighter: the step made the logits non-finite: {new_state[0]}")
        self.set_state(*new_state)
        self.last_update = {
            "score": dict(zip(present_tasks, scores, strict=True)),
            "gradient": dict(zip(present_tasks, gradient, strict=True)),
        }
        return self.weights()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "logits": list(self.logits),
            "exp_avg": list(self.exp_avg),
            "exp_avg_sq": list(self.exp_avg_sq),
            "steps": list(self.steps),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.set_state(
            [float(x) for x in state["logits"]],
            [float(x) for x in state["exp_avg"]],
            [float(x) for x in state["exp_avg_sq"]],
            [int(x) for x in state["steps"]],
        )


class IWUWeighter(LogitDescentWeighter):
    """MT-GRPO's Improvement-aware Weight Update (Subroutine 1): s_k = clip(I_k, -c, c) + lam * J_k.

    Paper: lr (beta) 0.025, lam 0.2 (3 tasks) / 0.1-1.2 (9 tasks), c 0.1 (0.2 in most 9-task runs).
    The released code steps with Adam, weight decay 1e-5 (3 tasks) / 1e-4 (9 tasks). c is its own setting,
    not scaled by lr / 1e-6 as in the released code (MTGRPO_SPEC.md §2); inf turns the clip off.
    Diagnostics per present task: clip_bound (1.0 if |I_k| > c), abs_improvement |I_k|, lam_reward lam*J_k,
    score s_k, gradient g_k, and clip_bound_rate (the fraction of this task's updates so far in which the
    clip bound), so a run shows which of the two signals moves the weights.
    """

    name = "iwu"
    reads = ("reward", "improvement")

    def __init__(
        self,
        tasks: Sequence[str],
        lr: float = 0.025,
        lam: float = 0.2,
        improvement_clip: float = 0.1,
        weight_decay: float = 0.0,
        optimizer: str = "sgd",
    ) -> None:
        super().__init__(tasks, lr, weight_decay, optimizer)
        self.lam = self.check_lam(lam)
        if not improvement_clip > 0:
            raise ValueError(
                f"iwu weighter: improvement_clip must be > 0 (inf: no clip), got {improvement_clip}"
            )
        self.improvement_clip = float(improvement_clip)
        self.clip_bound_count = [0] * len(self.tasks)
        self.update_count = [0] * len(self.tasks)

    def scores(self, stats: Sequence[TaskStats]) -> list[float]:
        """Subroutine 1, line 1: s_k = clip(I_k, -c, c) + lam * J_k."""
        clip = self.improvement_clip
        return [min(max(s.improvement, -clip), clip) + self.lam * s.reward for s in stats]

    def update(self, stats: Mapping[str, TaskStats]) -> dict[str, float]:
        weights = super().update(stats)
        clip_bound, clip_bound_rate = {}, {}
        for task, task_stats in stats.items():
            i = self.index[task]
            bound = abs(task_stats.improvement) > self.improvement_clip
            self.clip_bound_count[i] += bound
            self.update_count[i] += 1
            clip_bound[task] = float(bound)
            clip_bound_rate[task] = self.clip_bound_count[i] / self.update_count[i]
        self.last_update |= {
            "clip_bound": clip_bound,
            "clip_bound_rate": clip_bound_rate,
            "abs_improvement": {task: abs(task_stats.improvement) for task, task_stats in stats.items()},
            "lam_reward": {task: self.lam * task_stats.reward for task, task_stats in stats.items()},
        }
        return weights

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "clip_bound_count": list(self.clip_bound_count),
            "update_count": list(self.update_count),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.clip_bound_count = [int(c) for c in state["clip_bound_count"]]
        self.update_count = [int(c) for c in state["update_count"]]


class StrictWeighter(LogitDescentWeighter):
    """Strict worst-task baseline (eps = 0): the IWU step with s_k = J_k; collapses, oscillates (Fig. 2)."""

    name = "strict"
    reads = ("reward",)

    def __init__(
        self, tasks: Sequence[str], lr: float = 0.025, weight_decay: float = 0.0, optimizer: str = "sgd"
    ) -> None:
        super().__init__(tasks, lr, weight_decay, optimizer)

    def scores(self, stats: Sequence[TaskStats]) -> list[float]:
        """Strict variant of Subroutine 1, line 1: s_k = J_k."""
        return [s.reward for s in stats]


class RegularizedWeighter(LogitDescentWeighter):
    """Subroutine 2: s_k = lam * J_k and xi <- xi - beta (g + eta xi), eta in {1e-2, 5e-4, 1e-5}.

    The paper's rule is optimizer="sgd", lam=1 (the defaults). The released code's variant is
    optimizer="adam", lam=0.2, with eta as Adam's coupled weight decay.
    """

    name = "reg"
    reads = ("reward",)

    def __init__(
        self,
        tasks: Sequence[str],
        lr: float = 0.025,
        eta: float = 1e-2,
        lam: float = 1.0,
        optimizer: str = "sgd",
    ) -> None:
        super().__init__(tasks, lr, eta, optimizer)
        self.lam = self.check_lam(lam)

    def scores(self, stats: Sequence[TaskStats]) -> list[float]:
        """Subroutine 2, line 1: s_k = lam * J_k (the eta * xi term is the optimizer's weight decay)."""
        return [self.lam * s.reward for s in stats]


SEC_ABSENT_ARMS = ("decay", "keep")


class SECWeighter(TaskWeighter):
    """SEC bandit baseline: Q_k <- (1 - alpha) Q_k + alpha mean|A|_k, z = softmax(Q / T).

    An arm with no sample in the batch (absent from `stats`): "decay" (the released code, priority.py
    BanditPriority.update) steps it with mean|A| = 0, so its Q shrinks by (1 - alpha); "keep" leaves it."""

    name = "sec"
    reads = ("mean_abs_advantage",)
    update_every = "step"  # the bandit steps once per training step (algo/updates.py)

    def __init__(
        self, tasks: Sequence[str], alpha: float = 0.5, temperature: float = 0.2, absent_arms: str = "decay"
    ) -> None:
        super().__init__(tasks)
        if not 0 < alpha <= 1:
            raise ValueError(f"sec weighter: alpha must be in (0, 1], got {alpha}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"sec weighter: temperature must be > 0, got {temperature}")
        if absent_arms not in SEC_ABSENT_ARMS:
            raise ValueError(f"sec weighter: absent_arms must be one of {', '.join(SEC_ABSENT_ARMS)}")
        self.alpha, self.temperature, self.absent_arms = float(alpha), float(temperature), absent_arms
        self.values = [0.0] * len(self.tasks)

    def distribution(self) -> list[float]:
        """SEC: p_k proportional to exp(Q_k / T)."""
        return softmax(self.values, self.temperature)

    def update(self, stats: Mapping[str, TaskStats]) -> dict[str, float]:
        """SEC: Q_k <- (1 - alpha) Q_k + alpha * mean|A|_k (0 for an absent arm under "decay")."""
        self.check_stats(stats)
        observed = {task: task_stats.mean_abs_advantage for task, task_stats in stats.items()}
        if self.absent_arms == "decay":
            observed = {task: observed.get(task, 0.0) for task in self.tasks}
        for task, mean_abs_advantage in observed.items():
            i = self.index[task]
            self.values[i] = (1 - self.alpha) * self.values[i] + self.alpha * mean_abs_advantage
        self.last_update = {"value": {task: self.values[self.index[task]] for task in observed}}
        return self.weights()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "values": list(self.values)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.values = [float(x) for x in state["values"]]


WEIGHTERS: dict[str, type[TaskWeighter]] = {
    cls.name: cls
    for cls in (
        UniformWeighter,
        StaticWeighter,
        IWUWeighter,
        StrictWeighter,
        RegularizedWeighter,
        SECWeighter,
    )
}


def make_weighter(name: str, tasks: Sequence[str], **kwargs: Any) -> TaskWeighter:
    """Build the weighter called `name` for `tasks`; kwargs are its constructor's keyword arguments."""
    if name not in WEIGHTERS:
        raise ValueError(f"unknown task weighter {name!r}; allowed: {', '.join(WEIGHTERS)}")
    cls = WEIGHTERS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "tasks")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"{name} weighter: unknown options {unknown}; allowed: {', '.join(allowed) or 'none'}"
        )
    return cls(tasks, **kwargs)
