"""A reference of the released reward semantics, a response generator, and the differential comparison.

The reference is a plain, slow transcription of what the released scorers do (rsshyam/MT-GRPO,
verl/verl/utils/reward_score/{utils,countdown,zebra,arc}.py and the RewardManager in
verl/verl/trainer/main_ppo.py; docs/parity.md cites the lines). It shares no code with the production
scorers (openrlhf_mt/tasks/extract.py, arithmetic.py, paper.py). Where the released countdown scorer calls
``eval``, the reference parses with CPython's own parser (``ast.parse``, which runs nothing) and evaluates
the tree with Python's operators, so it accepts exactly the texts ``eval`` accepts and gives the same
numbers and errors.

The generator covers (and states, as COVERAGE): the right answer with formatting variants (spaces, tabs,
form feeds, ``\\r``, extra parentheses and signs, float literals, case and padding), random expressions over
the row's numbers (+ - * / // **), wrong, missing and repeated numbers, junk, empty boxes, nested and
unbalanced braces, several boxes and lines, ``\\boxed`` without a brace, ``\\fbox``, trailing text,
whitespace and newlines, division by zero, non-ASCII digits and spaces. Not covered, by design: integer
powers whose result exceeds 2**15 bits (the reference declines them; production gives no value beyond 2**16
bits), nesting deeper than 40 (production caps parentheses at CPython's 200 and unary runs at 200), texts
over 1 MiB (production reads the final 1 MiB). docs/parity.md lists these bounds.
"""

from __future__ import annotations

import ast
import math
import operator
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.paper import r1_zero_prompt

COVERAGE = (
    "right answers with formatting variants; random expressions over the row's numbers (+ - * / // **); "
    "wrong, missing and repeated numbers; junk; empty boxes; nested and unbalanced braces; several boxes "
    "and lines; \\boxed without a brace; \\fbox; trailing text, whitespace and newlines; division by zero; "
    "non-ASCII digits and spaces. Outside: integer powers over 2**15 bits, nesting deeper than 40, texts "
    "over 1 MiB."
)
EOS = "<|endoftext|>"
REFERENCE_POWER_BITS = 1 << 15


class OutsideCoverage(Exception):
    """The reference declines a text (a huge integer power): it is not part of the comparison."""


# ---------------------------------------------------------------------------------------------------------
# The released semantics


def released_answer(decoded: str) -> str | None:
    """utils.extract_solution: after the first "Assistant:", the last line, its last \\boxed{...}."""
    for marker in ("Assistant:", "<|im_start|>assistant"):
        if marker in decoded:
            decoded = decoded.split(marker, 1)[1]
            break
    else:
        return None
    line = decoded.split("\n")[-1]
    start = line.rfind("\\boxed")
    if start < 0:
        start = line.rfind("\\fbox")
        if start < 0:
            return None
    depth, end = 0, None
    for i in range(start, len(line)):
        if line[i] == "{":
            depth += 1
        if line[i] == "}":
            depth -= 1
            if depth == 0:
                end = i
                break
    if end is None:
        return None
    boxed = line[start : end + 1]
    if boxed[: len("\\boxed{")] != "\\boxed{" or boxed[-1] != "}":
        return None
    return boxed[len("\\boxed{") : -1]


_BINARY_OPS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}


def _walk(node: ast.AST):
    if isinstance(node, ast.Expression):
        return _walk(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple) and not node.elts:
        return ()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _walk(node.operand)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        left, right = _walk(node.left), _walk(node.right)
        huge = type(left) is int and type(right) is int and right > 0 and abs(left) > 1
        if isinstance(node.op, ast.Pow) and huge and right * math.log2(abs(left)) > REFERENCE_POWER_BITS:
            raise OutsideCoverage("integer power beyond the reference's bound")
        return _BINARY_OPS[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        _walk(node.func)
        raise TypeError("object is not callable")
    raise AssertionError(f"the released character set cannot spell {ast.dump(node)}")


def eval_without_eval(text: str):
    """What ``eval(text, {"__builtins__": None}, {})`` returns for the released character set."""
    return _walk(ast.parse(text.lstrip(" \t"), mode="eval"))


def released_countdown(decoded: str, numbers: list[int], target: int, right=1.0, format_score=0.1) -> float:
    """countdown.compute_score."""
    equation = released_answer(decoded)
    if equation is None:
        return 0
    try:
        valid = sorted(int(n) for n in re.findall(r"\d+", equation)) == sorted(numbers)
    except Exception:
        valid = False
    if not valid:
        return format_score
    if not re.match(r"^[\d+\-*/().\s]+$", equation):
        return format_score
    try:
        result = eval_without_eval(equation)
    except OutsideCoverage:
        raise
    except Exception:
        return format_score
    try:
        return right if abs(result - target) < 1e-5 else format_score
    except Exception:
        return format_score


def released_exact(decoded: str, target: str, right=1.0, format_score=0.1) -> float:
    """zebra.compute_score and arc.compute_score (the same function)."""
    answer = released_answer(decoded)
    if answer is None:
        return 0
    return right if answer.lower().strip() == target.lower().strip() else format_score


def released_score(family: str, decoded: str, truth: dict, train: bool = True) -> float:
    """The released reward of one decoded prompt + response (train: 1 / 0.1 / 0; test: 1 / 0)."""
    format_score = 0.1 if train else 0.0
    if family == "countdown":
        return released_countdown(decoded, truth["numbers"], truth["target"], format_score=format_score)
    return released_exact(decoded, truth["target"], format_score=format_score)


# ---------------------------------------------------------------------------------------------------------
# Rows and responses

FAMILIES = ("countdown", "zebra", "arc")
NAMES = ["Alice", "Bob", "Carol", "David", "Eric", "Arnold", "Peter", "Straße", "İlkay", "bob"]


@dataclass
class Row:
    task: str  # e.g. countdown-medium
    prompt: str
    truth: dict
    solution: str | None = None  # countdown: an expression that hits the target, when there is one
    solve: bool = True  # countdown: find `solution` with the solver (paper rows are all solvable)

    @property
    def family(self) -> str:
        return self.task.split("-")[0]

    @property
    def label(self) -> str:
        return encode_label(self.task, self.truth)


def generated_rows(family: str, count: int, rng: random.Random) -> list[Row]:
    """Rows made here (not by reasoning-gym): random numbers and targets, names, grids."""
    rows = []
    for _ in range(count):
        if family == "countdown":
            numbers = [rng.randint(1, 100) for _ in range(rng.randint(3, 6))]
            target, solution = rng.randint(1, 1000), None
            expression = _random_expression(numbers, rng, powers=False)
            try:  # half the time, the value of a random expression (its solution)
                value = eval_without_eval(expression)
            except ZeroDivisionError:
                value = None
            if rng.random() < 0.5 and value is not None and value == int(value) and 1 <= value <= 1000:
                target, solution = int(value), expression
            truth = {"numbers": numbers, "target": target}
            level = {3: "easy", 4: "medium", 5: "hard", 6: "very_hard"}[len(numbers)]
            question = f"Using the numbers {numbers}, create an equation that equals {target}."
        else:
            if family == "zebra":
                target = rng.choice(NAMES)
            else:
                target = " ".join(str(rng.randint(0, 9)) for _ in range(rng.choice([10, 20, 30, 40])))
            truth, level = {"target": target}, rng.choice(["easy", "medium", "hard", "very_hard"])
            question = f"Which answer? Put it in \\boxed{{}}.\n{target[::-1]}"
            solution = None
        rows.append(Row(f"{family}-{level}", r1_zero_prompt(question), truth, solution, solve=False))
    return rows


def paper_rows(paper_rows_list: list[dict]) -> list[Row]:
    """Rows of the paper's test sets (openrlhf_mt.tasks.load_paper_test output)."""
    import json

    rows = []
    for row in paper_rows_list:
        label = json.loads(row["label"])
        rows.append(Row(label.pop("task"), row["prompt"], label))
    return rows


def _random_expression(numbers: list[int], rng: random.Random, powers: bool = True) -> str:
    """An expression using each of `numbers` once, random operators and parentheses."""
    parts = [str(n) for n in rng.sample(numbers, len(numbers))]
    operators = ["+", "-", "*", "/"] + (["//", "**"] if powers else [])
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        op = rng.choice(operators)
        if op == "**" and rng.random() < 0.7:
            op = "*"
        joined = f"{parts[i]}{op}{parts[i + 1]}"
        parts[i : i + 2] = [f"({joined})" if rng.random() < 0.6 else joined]
    expression = parts[0]
    return f"-{expression}" if rng.random() < 0.1 else expression


ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_SPACES = ["", "", "", " ", "  ", "\t", "\x0c", "\r", " \r", "\xa0", "\x0b"]


def _respace(expression: str, rng: random.Random) -> str:
    """Whitespace variants between tokens (mostly spaces; sometimes tabs, form feeds, \\r, odd spaces)."""
    style = rng.random()
    if style < 0.4:
        return expression
    if style < 0.8:
        return re.sub(r"([-+*/()])", lambda m: f" {m.group(1)} ", expression)
    return re.sub(r"([-+*/()])", lambda m: rng.choice(_SPACES) + m.group(1) + rng.choice(_SPACES), expression)


def _countdown_content(row: Row, rng: random.Random) -> str:
    numbers, target = row.truth["numbers"], row.truth["target"]
    kind = rng.random()
    if kind < 0.3 and row.solution is not None:  # the right answer, reformatted
        expression = row.solution
        if rng.random() < 0.2:
            expression = f"({expression})"
        if rng.random() < 0.15:
            float_literal = rng.choice(["", ".", ".0"])
            expression = re.sub(r"\d+", lambda m: m.group() + float_literal, expression, count=1)
        if rng.random() < 0.1:
            expression = "+" + expression if rng.random() < 0.5 else f"--({expression})"
        if rng.random() < 0.1:
            expression = f"{expression} = {target}"
        return (
            rng.choice(["", " ", "\t", "\x0c ", "\r", " \r "])
            + _respace(expression, rng)
            + rng.choice(["", "", " ", "\r", "\t", " \r\t"])
        )
    if kind < 0.6:  # random expressions over the row's numbers
        return _respace(_random_expression(numbers, rng), rng)
    if kind < 0.75:  # wrong, missing or repeated numbers
        wrong = list(numbers)
        change = rng.random()
        if change < 0.3:
            wrong.append(rng.choice(numbers))
        elif change < 0.6 and len(wrong) > 1:
            wrong.pop(rng.randrange(len(wrong)))
        else:
            wrong[rng.randrange(len(wrong))] = rng.randint(0, 120)
        return _respace(_random_expression(wrong, rng), rng)
    if kind < 0.85:  # division by zero, leading zeros, odd digits and literals
        a, *rest = rng.sample(numbers, len(numbers))
        tail = "+".join(map(str, rest))
        return rng.choice(
            [
                f"{a}/({tail}-{tail})" if tail else f"{a}/0",
                f"0{a}+{tail}" if tail else f"0{a}",
                f"{a}..+{tail}",
                f"{a}({tail})",
                f"({a}+{tail})*()",
                f"{a}+{tail}+...",
                str(a).translate(ARABIC_INDIC_DIGITS) + f"+{tail}",
                f"{a}e0+{tail}",
                f"{a}**{tail}" if tail else f"{a}**2",
            ]
        )
    return _junk(rng)


def _junk(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            " ",
            "\t",
            "hello",
            "x+y",
            "\\frac{1}{2}",
            "{1+2}",
            "{}",
            "a{b{c}d}e",
            "24",
            "1 = 1",
            "Ⅻ",
            "None",
            "∞",
            "1,2",
            "(",
            ")",
            "{",
        ]
    )


def _exact_content(row: Row, rng: random.Random) -> str:
    target = row.truth["target"]
    kind = rng.random()
    if kind < 0.4:  # right, with case and padding variants
        variant = rng.choice([target, target.upper(), target.lower(), target.title(), target.swapcase()])
        pad = ["", " ", "  ", "\t", "\r", "\xa0", "\u2003", "\x0c"]
        return rng.choice(pad) + variant + rng.choice(pad)
    if kind < 0.7:  # wrong
        if row.family == "zebra":
            return rng.choice([*NAMES, "nobody", target + "s", target[:-1]])
        cells = target.split()
        cells[rng.randrange(len(cells))] = str(rng.randint(0, 9))
        return rng.choice([" ".join(cells), "".join(cells), ", ".join(cells), target + " 0"])
    if kind < 0.8:
        return rng.choice(["", " ", "\t"])
    if kind < 0.9:
        return "{" + target + "}" if rng.random() < 0.5 else "\\text{" + target + "}"
    return _junk(rng)


_PREFIXES = [
    "",
    "Let me think.\n",
    "First we try a few things.\nThen more.\n",
    "Reasoning with a box \\boxed{7} on an earlier line.\n",
    " ",
    "So, ",
]
_LAST_LINE_FRAMES = [
    "So the answer is {box}",
    "So the answer is {box}",
    "{box}",
    "{box}",
    "{box}",
    "{box}.",
    "The answer is {box} and that is final",
    "\\boxed{{wrong}} then {box}",
    "{box} or \\boxed{{wrong}}",
    "{box} and \\boxed",
    "{box} \\boxedx",
    "\\fbox{{1}} {box}",
]
_ENDINGS = [*[""] * 6, " ", ".", "\r", "\t", "\n", "\n\n", " \n", "\r\n", "\n  ", "\nI hope so."]


def make_response(row: Row, rng: random.Random) -> str:
    """One generated response for `row` (see the module doc for what is covered)."""
    content = _countdown_content(row, rng) if row.family == "countdown" else _exact_content(row, rng)
    shape = rng.random()
    if shape < 0.85:
        box = "\\boxed{" + content + "}"
    elif shape < 0.92:
        box = rng.choice(["\\boxed{" + content, "\\boxed " + content, "\\boxed {" + content + "}"])
    elif shape < 0.95:
        box = "\\fbox{" + content + "}"
    else:
        box = content  # unboxed
    frame = rng.choice(_LAST_LINE_FRAMES)
    return (
        rng.choice(_PREFIXES)
        + frame.replace("{box}", box).replace("{{", "{").replace("}}", "}")
        + (rng.choice(_ENDINGS))
    )


# ---------------------------------------------------------------------------------------------------------
# The comparison

#: production reward options compared against the released semantics: the default must agree exactly
OPTION_SUFFIXES = {
    "default": "",
    "newline=ignore": "?newline=ignore",
    "format_credit=valid": "?format_credit=valid",
}


@dataclass
class ParityResult:
    family: str
    responses: int = 0
    outside_coverage: int = 0
    disagreements: Counter = field(default_factory=Counter)  # option -> count
    rewards: Counter = field(default_factory=Counter)  # released train reward -> count
    examples: dict = field(default_factory=dict)  # option -> first disagreeing (response, released, ours)


def compare(
    rows: list[Row],
    responses_per_family: int,
    seed: int,
    options: dict[str, str] = OPTION_SUFFIXES,
    through_reward_func_every: int = 0,
) -> dict[str, ParityResult]:
    """Score generated responses with the released reference and with production, per family and option.

    With `through_reward_func_every` = n > 0, every n-th response is also scored through the OpenRLHF
    reward function, with an EOS token after it (the released RewardManager decodes it too)."""
    from openrlhf_mt.tasks.openrlhf_reward import reward_func

    rng = random.Random(seed)
    results = {family: ParityResult(family) for family in FAMILIES}
    by_family = {family: [row for row in rows if row.family == family] for family in FAMILIES}
    for family, family_rows in by_family.items():
        result = results[family]
        for row in family_rows:
            if family == "countdown" and row.solve and row.solution is None:
                row.solution = solve_countdown(row.truth["numbers"], row.truth["target"])
        for i in range(responses_per_family):
            row = family_rows[i % len(family_rows)]
            response = make_response(row, rng)
            train = i % 5 != 4  # every fifth as a test-set score (1 / 0)
            try:
                want = released_score(family, row.prompt + response, row.truth, train)
            except OutsideCoverage:
                result.outside_coverage += 1
                continue
            result.responses += 1
            result.rewards[want] += 1
            for option, suffix in options.items():
                ours = get_task(row.task + suffix).score(response, row.label, train)
                if ours != want:
                    result.disagreements[option] += 1
                    result.examples.setdefault(option, (response, want, ours))
            if through_reward_func_every and i % through_reward_func_every == 0:
                decoded = row.prompt + response + EOS
                want = released_score(family, decoded, row.truth)
                ours = reward_func([decoded], [row.prompt], [row.label])["rewards"].tolist()[0]
                if abs(ours - want) > 1e-6:
                    result.disagreements["reward_func"] += 1
                    result.examples.setdefault("reward_func", (response, want, ours))
    return results


def iter_rows(paper: list[dict] | None, generated_per_family: int, seed: int) -> Iterator[Row]:
    """The paper's test rows (when given), then generated rows of each family."""
    if paper:
        yield from paper_rows(paper)
    rng = random.Random(seed)
    for family in FAMILIES:
        yield from generated_rows(family, generated_per_family, rng)
