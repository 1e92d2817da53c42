"""Any reasoning-gym dataset as a task: ``rg:<dataset>[?key=value&...]``.

``rg:basic_arithmetic?min_terms=2&max_terms=3`` makes reasoning-gym's ``basic_arithmetic`` with that
config (values are read as JSON where they parse, else as text). The prompt is the paper's R1-Zero
prompt around the dataset's own question plus "Return the final answer in \\boxed{}."; the label holds
the entry's ``answer`` and ``metadata`` (made JSON-safe) so the dataset's own scorer can grade it.

Reward mapping (reasoning-gym scores are floats in [0, 1], sometimes with partial credit):
- scorer returns 1.0                                   -> correct (1.0; eval 1);
- a non-blank ``\\boxed{}`` answer scoring below 1.0    -> well formed but wrong (0.1; eval 0);
- no ``\\boxed{}`` on the last line, a blank one, or a scorer that raises -> 0.

Safety: reasoning-gym scorers are arbitrary Python, and some run ``eval``/``exec``/sympy ``parse_expr``
on the model's answer (found by reading reasoning-gym 0.1.25's sources). Those datasets are refused
(:data:`UNSAFE_SCORERS`); answers longer than :data:`MAX_ANSWER_CHARS` are not passed to a scorer.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from openrlhf_mt.tasks.base import Grade, Task, TaskDataError
from openrlhf_mt.tasks.extract import last_boxed_answer
from openrlhf_mt.tasks.paper import boxed, r1_zero_prompt
from openrlhf_mt.tasks.reasoning_gym_utils import ARC_ITEM_TIMEOUT_S, generate_entries

ANSWER_INSTRUCTION = "Return the final answer in \\boxed{}."
MAX_ANSWER_CHARS = 2000
# Scorers that evaluate the model's answer as code (reasoning-gym 0.1.25): eval, exec or sympy parse_expr.
UNSAFE_SCORERS = {
    "binary_matrix": "eval()",
    "countdown": "sympy parse_expr",
    "intermediate_integration": "sympy parse_expr",
    "n_queens": "eval()",
    "polynomial_multiplication": "sympy parse_expr",
    "puzzle24": "sympy parse_expr",
    "simple_integration": "sympy parse_expr",
    "spiral_matrix": "eval()",
    "string_insertion": "eval()",
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_reasoning_gym_name(name: str) -> tuple[str, dict[str, Any]]:
    """``rg:dataset?key=value&...`` -> (dataset, config)."""
    body = name.removeprefix("rg:")
    dataset, _, query = body.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise TaskDataError(f"task {name!r}: config must look like '?key=value&key=value'") from None
    return dataset, {key: _parse_value(value) for key, value in pairs}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class ReasoningGymTask(Task):
    truth_keys = ("answer",)

    def __init__(self, name: str, dataset: str, config: dict[str, Any]) -> None:
        super().__init__(name, f"reasoning-gym {dataset} {config or ''}".strip())
        self.dataset = dataset
        self.config = config
        # arc_1d can loop forever at large sizes; other generators get a generous guard.
        self.item_timeout_s = ARC_ITEM_TIMEOUT_S if dataset == "arc_1d" else 60.0

    @functools.cached_property
    def scorer(self) -> Any:
        import reasoning_gym

        return reasoning_gym.create_dataset(self.dataset, size=1, seed=0, **self.config)

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        entries = generate_entries(self.dataset, self.config, seed, start, stop, self.item_timeout_s)
        return [
            (
                r1_zero_prompt(f"{entry['question'].rstrip()}\n{ANSWER_INSTRUCTION}"),
                {"answer": _json_safe(entry["answer"]), "metadata": _json_safe(entry.get("metadata", {}))},
            )
            for entry in entries
        ]

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        answer = str(self.truth(label)["answer"])
        return None if "\n" in answer else boxed(answer)

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        answer = last_boxed_answer(response)
        if answer is None or not answer.strip():
            return Grade.INVALID
        if len(answer) > MAX_ANSWER_CHARS:
            return Grade.WELL_FORMED
        entry = {"question": "", "answer": truth["answer"], "metadata": truth.get("metadata", {})}
        try:
            score = float(self.scorer.score_answer(answer.strip(), entry))
        except Exception:  # a third-party scorer failing on hostile text is a wrong answer, not a crash
            return Grade.INVALID
        return Grade.CORRECT if score >= 1.0 else Grade.WELL_FORMED


def make_reasoning_gym_task(name: str) -> ReasoningGymTask:
    """Validate an ``rg:`` name (dataset, config keys, safety) and make the task."""
    from reasoning_gym.factory import DATASETS

    dataset, config = parse_reasoning_gym_name(name)
    if dataset not in DATASETS:
        close = difflib.get_close_matches(dataset, list(DATASETS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join('rg:' + c for c in close)}?" if close else ""
        raise TaskDataError(f"task {name!r}: reasoning-gym has no dataset {dataset!r}{hint}")
    if dataset in UNSAFE_SCORERS:
        instead = "; use countdown-easy/medium/hard/very_hard instead" if dataset == "countdown" else ""
        raise TaskDataError(
            f"task {name!r} refused: reasoning-gym's {dataset} scorer runs {UNSAFE_SCORERS[dataset]} on the "
            f"model's answer, which is hostile input{instead}"
        )
    _, config_class = DATASETS[dataset]
    allowed = {field.name for field in dataclasses.fields(config_class)} - {"seed", "size"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise TaskDataError(
            f"task {name!r}: unknown config key(s) {unknown} for {dataset}; allowed: {sorted(allowed)}"
        )
    task = ReasoningGymTask(name, dataset, config)
    try:
        task.scorer  # noqa: B018 - builds the dataset once, so a bad config value fails here, clearly
    except Exception as error:
        raise TaskDataError(f"task {name!r}: reasoning-gym rejected the config {config}: {error}") from None
    return task
