"""Task families, prompts, verifiable rewards, dataset building and loading (docs/tasks.md).

    from openrlhf_mt.tasks import get_task, list_tasks
    task = get_task("countdown-medium")          # also zebra-*, arc-*, tiny-*, rg:<dataset>, module:factory
    rows = task.generate(n, seed)                # [{"prompt", "label", "datasource"}]
    task.score(response, label, train=True)      # 1.0 / 0.1 / 0.0 (eval: 1 / 0)

Labels are JSON text with "task" plus the ground truth (countdown: "numbers", "target"; zebra, arc:
"target"). The paper's tasks are in paper.py, the tiny character-level tasks (tiny-add ``add 36+47=`` ->
``83``, tiny-countdown ``cd 6,7,2>3:`` -> ``2+7-6``, tiny-arc ``arc 2220090000>2220999000;8880080000>``
-> ``8880888000``; answer = whole response, no preamble, no \\boxed) in tiny.py.
"""

from openrlhf_mt.tasks.base import FORMAT_REWARD, Grade, Row, Task, TaskDataError
from openrlhf_mt.tasks.datasets import BuildConfig, build_datasets, read_rows, write_rows
from openrlhf_mt.tasks.paper_test import load_paper_test
from openrlhf_mt.tasks.registry import ENTRY_POINT_GROUP, get_task, list_tasks, register_task

__all__ = [
    "ENTRY_POINT_GROUP",
    "FORMAT_REWARD",
    "BuildConfig",
    "Grade",
    "Row",
    "Task",
    "TaskDataError",
    "build_datasets",
    "get_task",
    "list_tasks",
    "load_paper_test",
    "read_rows",
    "register_task",
    "write_rows",
]
