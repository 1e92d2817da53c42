"""Typed run configuration: the algorithm section shared by both engines, method presets, the local engine.

The algorithm section (`AlgoConfig`) and the presets (`METHOD_PRESETS`, `apply_method`) are plain
dataclasses with no torch/transformers imports, so the OpenRLHF engine builds its `--mt.*` flags from
them (`add_arguments` / `from_arguments`). The local engine's run config (`RunConfig`) nests the same
`AlgoConfig` next to its model, data, rollout, train, eval, logging and checkpoint sections and loads
from YAML (`load_config`) with `--set section.key=value` overrides.

Every default is written once, on its dataclass field. A preset only names the fields where a method
differs from those defaults (MTGRPO_SPEC.md §6). Bad input raises `ConfigError` naming the key and saying
what to change, before any model loads: unknown keys, wrong types, NaN or infinite numbers, values out of
range (sizes, λ, learning rates, clip ranges, decays), unknown choices, and settings that contradict each
other (static weights that are negative, all zero or for other tasks than data.tasks; more mini-batches
than a batch has samples; J from evaluations without evaluations; replay without RPS).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from openrlhf_mt.algo.weights import WEIGHTERS


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message names the key."""


def _choice(default: str, choices: tuple[str, ...], help: str) -> Any:
    return field(default=default, metadata={"choices": choices, "help": help})


def _opt(default: Any, help: str, **check: Any) -> Any:
    """A field with an immutable default, a help text and optional bounds (`min`, `max`; exclusive: `gt`,
    `lt`)."""
    return field(default=default, metadata={"help": help, **check})


# ----------------------------------------------------------------------------------------------------------
# The algorithm section (both engines)


@dataclass
class AlgoConfig:
    """MT-GRPO and its baselines: task weights, zero-gradient filter, batch building, clipped loss."""

    weighter: str = _choice(
        "iwu",
        ("uniform", "static", "iwu", "strict", "reg", "sec"),
        "task weighter: uniform, static (fixed `static_weights`), iwu (Subroutine 1), "
        "strict (worst-task, s_k = J_k), reg (Subroutine 2), sec (SEC bandit)",
    )
    static_weights: dict[str, float] | None = field(
        default=None, metadata={"help": "task -> weight for weighter=static"}
    )
    lam: float = _opt(0.2, "IWU λ: weight of the reward level J_k against the improvement I_k", min=0.0)
    lr: float = _opt(0.025, "β: step size of the task-weight logits", gt=0.0)
    improvement_clip: float = _opt(0.1, "c: I_k is clipped to [-c, c] (not scaled by the model lr)", gt=0.0)
    improvement_fraction: float = _opt(
        1.0,
        "share of each task's samples per mini-batch whose objective is recomputed after the step for I_k "
        "(1: all, released code; less: an unbiased estimate at that share of the extra forward's cost)",
        gt=0.0,
        max=1.0,
    )
    optimizer: str = _choice("adam", ("adam", "sgd"), "optimizer of the weight logits (released code: adam)")
    weight_decay: float = _opt(
        1e-5, "coupled L2 weight decay on the logits (code: 1e-5 for 3 tasks)", min=0.0
    )
    eta: float = _opt(1e-2, "η of the regularised variant (weighter=reg)", min=0.0)
    sec_alpha: float = _opt(0.5, "SEC bandit: Q_k EMA step α", gt=0.0, max=1.0)
    sec_temperature: float = _opt(0.2, "SEC bandit: softmax temperature T", gt=0.0)
    sec_absent_arms: str = _choice(
        "decay",
        ("decay", "keep"),
        "SEC bandit: an arm with no sample in the step steps with mean|Â| = 0 (decay, released code) or "
        "keeps its value (keep)",
    )
    update_every: str = _choice(
        "minibatch",
        ("minibatch", "step"),
        "one weight update per PPO mini-batch (code) or per step (paper); SEC: per step either way",
    )
    signal_source: str = _choice("batch", ("batch", "eval"), "J_k from training-batch accuracy or last eval")
    j_ema_decay: float = _opt(0.5, "decay of the EMA that turns batch accuracy into J_k", min=0.0, lt=1.0)

    filter_mode: str = _choice(
        "strict",
        ("strict", "lenient", "zero_spread", "none"),
        "zero-gradient filter: strict (drop all-correct and none-correct groups), lenient (drop all-0 and "
        "all-correct groups, released code), zero_spread (drop any constant group, paper text), none (GRPO)",
    )
    preserve_ratio: bool = _opt(True, "ratio-preserving refill (RPS); false: task-blind DAPO refill")
    acceptance_aware: bool = _opt(
        True, "AAS: inflate each task's share of a round by 1/(1-ρ_k) (released: Exp. 2 scripts only)"
    )
    ratio_from_step: int = _opt(
        1, "RPS from this training step on (task-blind refill before; released Exp. 2 and REG: 10)", min=1
    )
    refill: str = _choice(
        "released",
        ("released", "deficit"),
        "RPS rounds after the first: shares z·m until B groups are accepted, then deficit shares "
        "(released), or deficit shares from round 2 (deficit, the paper's Algorithm 2)",
    )
    round_counts: str = _choice(
        "largest_remainder",
        ("largest_remainder", "iid"),
        "a round's prompts per task: largest-remainder apportionment of its shares, or i.i.d. draws "
        "(iid, as the released code)",
    )
    request: str = _choice(
        "oversample",
        ("oversample", "adaptive", "streaming"),
        "prompts an RPS round asks for: oversample × batch size (released), or adaptive: per task the "
        "fewest that cover its deficit with probability request_confidence given its acceptance rate, "
        "or streaming: that many kept in flight and topped up per task as results come in (OpenRLHF "
        "engine only)",
    )
    request_confidence: float = _opt(
        0.9,
        "request=adaptive/streaming: probability that a task's request covers its deficit",
        min=0.5,
        max=0.999,
    )
    oversample: float = _opt(
        3.0, "M_os: prompts drawn per round = oversample × batch size (adaptive: the cap)", min=1.0
    )
    max_rounds: int = _opt(10, "N_rs: generation rounds per step, the first included", min=1)
    max_inflation: float = _opt(5.0, "M_acc: cap on the acceptance-aware inflation 1/(1-ρ_k)", min=1.0)
    rho_decay: float = _opt(0.9, "decay of the per-task zero-gradient-rate EMA ρ_k", min=0.0, lt=1.0)
    reuse_max_age: int = _opt(0, "reuse surplus accepted groups for this many later steps (0: never)", min=0)

    clip_low: float = _opt(
        0.2, "ε_low of the clipped surrogate (the ratio's floor 1 - ε_low > 0)", min=0.0, lt=1.0
    )
    clip_high: float = _opt(0.28, "ε_high of the clipped surrogate (DAPO clip-higher)", min=0.0)

    def validate(self, where: str = "algo") -> None:
        """The checks that involve more than one field (each field's own are in its metadata)."""
        if self.weighter == "static":
            weights = self.static_weights or {}
            if not weights:
                raise ConfigError(f"{where}.static_weights: weighter=static needs a task -> weight mapping")
            negative = {task: w for task, w in weights.items() if w < 0}
            if negative:
                raise ConfigError(f"{where}.static_weights: weights must be >= 0; negative: {negative}")
            if not any(weights.values()):
                raise ConfigError(
                    f"{where}.static_weights: all weights are 0; give at least one task weight > 0"
                )
        elif self.static_weights is not None:
            raise ConfigError(
                f"{where}.static_weights: only used with weighter=static (this run's is {self.weighter}); "
                "remove it or set the weighter to static"
            )
        if self.reuse_max_age > 0 and (not self.preserve_ratio or self.filter_mode == "none"):
            raise ConfigError(
                f"{where}.reuse_max_age: replaying surplus groups needs the ratio-preserving refill and a "
                "filter (preserve_ratio true, filter_mode not none); got preserve_ratio "
                f"{self.preserve_ratio}, filter_mode {self.filter_mode}"
            )

    def weighter_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `openrlhf_mt.algo.weights.make_weighter(self.weighter, tasks, **...)`."""
        self.validate()
        if self.weighter == "static":
            return {"weights": dict(self.static_weights or {})}
        logit_step = {"lr": self.lr, "optimizer": self.optimizer}
        return {
            "uniform": {},
            "iwu": {
                **logit_step,
                "lam": self.lam,
                "improvement_clip": self.improvement_clip,
                "weight_decay": self.weight_decay,
            },
            "strict": {**logit_step, "weight_decay": self.weight_decay},
            "reg": {**logit_step, "lam": self.lam, "eta": self.eta},
            "sec": {
                "alpha": self.sec_alpha,
                "temperature": self.sec_temperature,
                "absent_arms": self.sec_absent_arms,
            },
        }[self.weighter]

    def sampler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `openrlhf_mt.algo.sampler.RatioPreservingSampler` besides tasks/batch size."""
        return {
            "oversample": self.oversample,
            "max_rounds": self.max_rounds,
            "max_inflation": self.max_inflation,
            "rho_decay": self.rho_decay,
            "filter_mode": self.filter_mode,
            "preserve_ratio": self.preserve_ratio,
            "reuse_max_age": self.reuse_max_age,
            "acceptance_aware": self.acceptance_aware,
            "ratio_from_step": self.ratio_from_step,
            "refill": self.refill,
            "round_counts": self.round_counts,
            "request": self.request,
            "request_confidence": self.request_confidence,
        }


# Only where a method differs from the AlgoConfig defaults above (MTGRPO_SPEC.md §6).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "grpo": {"weighter": "uniform", "filter_mode": "none", "preserve_ratio": False, "clip_high": 0.2},
    "dapo": {"weighter": "uniform", "preserve_ratio": False},
    "sec-grpo": {"weighter": "sec", "filter_mode": "none", "preserve_ratio": False, "clip_high": 0.2},
    "sec-dapo": {"weighter": "sec", "preserve_ratio": False},
    "mt-grpo": {"weighter": "iwu"},
    "grpo-iwu": {"weighter": "iwu", "preserve_ratio": False},
    "grpo-rps": {"weighter": "uniform"},
    "mt-grpo-reg": {"weighter": "reg"},
}


def apply_method(name: str, cfg: AlgoConfig | None = None) -> AlgoConfig:
    """The config `cfg` (default: all defaults) with method `name`'s preset fields set."""
    if name not in METHOD_PRESETS:
        raise ConfigError(f"unknown method {name!r}; allowed: {', '.join(METHOD_PRESETS)}")
    return _checked(dataclasses.replace(cfg or AlgoConfig(), **METHOD_PRESETS[name]), "algo")


# ----------------------------------------------------------------------------------------------------------
# The local engine's run config


@dataclass
class ModelConfig:
    path: str = _opt("builtin:tiny", "a local HF causal-LM directory, or builtin:tiny (offline char model)")
    device: str = _choice("auto", ("auto", "cpu", "cuda"), "auto: cuda when available, else cpu")
    dtype: str = _choice(
        "auto", ("auto", "float32", "bfloat16"), "parameter dtype; auto: bfloat16 on cuda, float32 on cpu"
    )
    threads: int = _opt(0, "CPU threads for torch (0: torch's default, one per core)", min=0)
    warmup_steps: int = _opt(600, "builtin:tiny: supervised warm-up steps on the task mix (cached)", min=0)
    warmup_batch_size: int = _opt(64, "builtin:tiny: warm-up examples per step", min=1)
    warmup_lr: float = _opt(3e-3, "builtin:tiny: warm-up peak learning rate (cosine decay)", gt=0.0)
    cache_dir: str = _opt("~/.cache/openrlhf-mt", "where the builtin:tiny warm-up checkpoint is cached")


@dataclass
class DataConfig:
    tasks: list[str] = field(
        default_factory=lambda: ["tiny-add", "tiny-countdown", "tiny-arc"],
        metadata={"help": "task names (openrlhf_mt.tasks)"},
    )
    train_size: int = _opt(2000, "training prompts generated per task (then cycled)", min=1)
    eval_size: int = _opt(64, "held-out prompts per task for evaluation", min=1)
    skip_bad_rows: bool = _opt(
        False,
        "leave out bad rows of data files (eval.paper_test), counted in faults/eval_rows_skipped and logged; "
        "false: a bad row makes the run evaluate on generated prompts (faults/eval_load_failed)",
    )
    seed: int | None = _opt(
        None,
        "seed of the generated prompts (train / held-out split) and of builtin:tiny's warm-up; null: the "
        "run's `seed`. Set it to compare runs whose `seed` (sampling, data order) differs on the same "
        "prompts and from the same warm-up",
    )


@dataclass
class RolloutConfig:
    prompts_per_step: int = _opt(16, "B: prompts in the (post-filter) training batch", min=1)
    rollouts_per_prompt: int = _opt(8, "N: sampled responses per prompt", min=2)
    temperature: float = _opt(1.0, "sampling temperature", gt=0.0)
    top_p: float = _opt(1.0, "nucleus sampling mass", gt=0.0, max=1.0)
    max_new_tokens: int = _opt(16, "response length limit in tokens", min=1)
    chunk_size: int = _opt(512, "sequences sampled together (one KV cache) at most", min=1)


@dataclass
class TrainConfig:
    steps: int = _opt(100, "training steps (one batch each)", min=0)
    lr: float = _opt(2e-4, "AdamW learning rate of the policy", gt=0.0)
    lr_schedule: str = _choice("constant", ("constant", "cosine"), "learning-rate schedule")
    adam_betas: list[float] = field(
        default_factory=lambda: [0.9, 0.99], metadata={"help": "AdamW (β1, β2), each in [0, 1)"}
    )
    weight_decay: float = _opt(0.0, "AdamW weight decay of the policy", min=0.0)
    mini_batches: int = _opt(4, "PPO mini-batches per step (one optimizer step each)", min=1)
    micro_batch_size: int = _opt(
        0, "sequences per forward/backward (0: a mini-batch's samples of one task)", min=0
    )
    grad_clip: float = _opt(1.0, "max gradient norm (0: off)", min=0.0)
    kl_coef: float = _opt(0.0, "τ: k3 KL penalty to the initial policy (0 as in the paper)", min=0.0)

    def validate(self, where: str = "train") -> None:
        if len(self.adam_betas) != 2 or not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ConfigError(
                f"{where}.adam_betas: expected two numbers in [0, 1) (β1, β2), got {self.adam_betas}"
            )


@dataclass
class EvalConfig:
    every: int = _opt(10, "evaluate every this many steps (and at steps 0 and last; 0: never)", min=0)
    samples: int = _opt(4, "k of mean@k: samples per held-out prompt", min=1)
    temperature: float = _opt(1.0, "eval sampling temperature (0: greedy)", min=0.0)
    paper_test: str | None = _opt(
        None,
        "the paper's test parquet file or directory: paper tasks are evaluated on all of their test rows "
        "(200 per task, as in the paper) instead of data.eval_size generated ones; null: generated only",
    )


@dataclass
class LoggingConfig:
    tensorboard: bool = _opt(True, "also write TensorBoard events to OUT/tensorboard")
    wandb: bool = _opt(False, "also log to Weights & Biases")
    wandb_project: str = _opt("openrlhf-mt", "wandb project")
    wandb_mode: str = _choice("offline", ("offline", "online"), "wandb mode")
    progress: bool = _opt(True, "tqdm progress bar")


@dataclass
class CheckpointConfig:
    every: int = _opt(0, "save OUT/checkpoints/last every this many steps (0: only at the end)", min=0)
    keep_best: bool = _opt(True, "keep OUT/checkpoints/best: the best worst-task eval accuracy so far")


@dataclass
class RunConfig:
    method: str = _choice("mt-grpo", tuple(METHOD_PRESETS), "method preset applied to the algo section")
    seed: int = _opt(0, "seed of prompts, sampling, and initialisation", min=0)
    out: str = _opt("runs/run", "output directory (metrics, checkpoints, logs)")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)

    @property
    def data_seed(self) -> int:
        """The seed of the prompts and of the warm-up: `data.seed`, else the run's `seed`."""
        return self.seed if self.data.seed is None else self.data.seed


def load_config(
    path: str | Path | None = None,
    method: str | None = None,
    overrides: typing.Sequence[str] = (),
) -> RunConfig:
    """YAML file -> RunConfig. Order: defaults, method preset, the file's `algo:` keys, `--set` overrides.

    `method` (the `--method` flag) replaces the file's `method:`. Overrides are `section.key=value` with
    the value read as YAML (`algo.lam=0.25`, `data.tasks=[tiny-add,tiny-arc]`, `seed=3`).
    """
    raw: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{path}: cannot read YAML config: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        *sections, leaf = key.strip().split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {section!r} is not a section")
        node[leaf] = yaml.safe_load(value)
    if method is not None:
        raw["method"] = method
    name = raw.get("method", RunConfig.method)
    if name not in METHOD_PRESETS:
        raise ConfigError(f"{where}: method: unknown value {name!r}; allowed: {', '.join(METHOD_PRESETS)}")
    algo_raw = raw.pop("algo", None) or {}
    if not isinstance(algo_raw, dict):
        raise ConfigError(f"{where}: algo: expected a mapping")
    cfg = from_dict(RunConfig, raw, where)
    preset = apply_method(name)
    cfg.algo = from_dict(AlgoConfig, {**dataclasses.asdict(preset), **algo_raw}, f"{where}: algo")
    if cfg.eval.paper_test is not None and not Path(cfg.eval.paper_test).expanduser().exists():
        raise ConfigError(
            f"{where}: eval.paper_test: {cfg.eval.paper_test}: no such file or directory "
            "(the paper's test parquet files, e.g. ../shared/data/paper_test; null: generated eval prompts)"
        )
    if (
        cfg.algo.signal_source == "eval"
        and cfg.eval.every <= 0
        and "reward" in WEIGHTERS[cfg.algo.weighter].reads
    ):
        raise ConfigError(
            f"{where}: algo.signal_source: eval takes J_k from evaluations, so it needs eval.every > 0 "
            f"(got {cfg.eval.every})"
        )
    samples = cfg.rollout.prompts_per_step * cfg.rollout.rollouts_per_prompt
    if cfg.train.mini_batches > samples:
        raise ConfigError(
            f"{where}: train.mini_batches: {cfg.train.mini_batches} mini-batches, but a full batch has only "
            f"rollout.prompts_per_step x rollout.rollouts_per_prompt = {samples} samples; use at most "
            f"{samples}"
        )
    if cfg.algo.static_weights is not None and set(cfg.algo.static_weights) != set(cfg.data.tasks):
        raise ConfigError(
            f"{where}: algo.static_weights: needs exactly one weight per task of data.tasks "
            f"{cfg.data.tasks}; got {sorted(cfg.algo.static_weights)}"
        )
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass config -> plain dict (YAML/JSON-ready)."""
    return dataclasses.asdict(cfg)


# ----------------------------------------------------------------------------------------------------------
# Generic checking of dataclass configs (used for YAML, --set, and --mt.* flags)

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, checking keys, types, choices and bounds; errors name the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where != "config" else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value or {}, key)
        else:
            kwargs[name] = _coerce(value, hint, key)
    return _checked(cls(**kwargs), where)


def _checked(cfg: T, where: str) -> T:
    for f in dataclasses.fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        key = f"{where}.{f.name}" if where != "config" else f.name
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(meta['choices'])}")
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"{key}: {value!r} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise ConfigError(f"{key}: {value!r} is above the maximum {meta['max']}")
        if "gt" in meta and value <= meta["gt"]:
            raise ConfigError(f"{key}: {value!r} must be greater than {meta['gt']}")
        if "lt" in meta and value >= meta["lt"]:
            raise ConfigError(f"{key}: {value!r} must be less than {meta['lt']}")
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate(where)
    return cfg


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_coerce(k, args[0], key): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads `2e-3` (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{key}: {value!r} is not a finite number")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {hint!r}")


def add_arguments(parser: argparse.ArgumentParser, cls: type = AlgoConfig, prefix: str = "--mt.") -> None:
    """Add one flag per field of `cls` (e.g. `--mt.lam 0.25`), parsed by the field's type, with its help.

    int, float and str fields parse as such (`--mt.weight_decay 1e-5` is the float 1e-05, which YAML 1.1
    would read as a string); lists, mappings and booleans are read as YAML (`--mt.preserve_ratio false`).
    """
    group = parser.add_argument_group(f"{cls.__name__} ({prefix}*)")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = f.metadata.get("choices")
        help_ = f"{f.metadata.get('help', '')} (default: {default})"
        if choices:
            help_ += f"; one of: {', '.join(choices)}"
        parse = hints[f.name] if hints[f.name] in (int, float, str) else yaml.safe_load
        group.add_argument(f"{prefix}{f.name}", dest=f"{prefix.strip('-')}{f.name}", type=parse, help=help_)


def from_arguments(
    args: argparse.Namespace, method: str | None = None, prefix: str = "--mt.", cls: type = AlgoConfig
) -> Any:
    """The `cls` config from `add_arguments` flags: defaults, then `method`'s preset, then flags given."""
    base = apply_method(method) if method is not None else cls()
    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f"{prefix.strip('-')}{f.name}", None)
        if value is not None:
            given[f.name] = value
    return from_dict(cls, {**dataclasses.asdict(base), **given}, prefix.strip("-").rstrip("."))
