"""The task registry: names -> tasks, in the style of reasoning-gym's dataset registry.

A task name is one of
- a built-in name (``list_tasks()``): ``countdown-medium``, ``zebra-hard``, ``arc-easy``, ``tiny-add``, ...;
- ``rg:<dataset>[?key=value&...]``: any reasoning-gym dataset with its config (see ``reasoning_gym_task``);
- ``<module.path>:<factory>``: a plug-in, ``factory(name) -> Task`` (see examples/custom_task.py);
- a name registered by an installed package under the entry point group ``openrlhf_mt.tasks``
  (``my-task = my_package.tasks:make_task``; the object is called with the task name).
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable
from importlib import metadata

from openrlhf_mt.tasks.base import Task, TaskDataError

ENTRY_POINT_GROUP = "openrlhf_mt.tasks"
TaskFactory = Callable[[str], Task]

_FACTORIES: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Make `factory(name) -> Task` available as `name` (replaces a previous registration)."""
    _FACTORIES[name] = factory
    get_task.cache_clear()


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def list_tasks() -> list[str]:
    """Names of the registered tasks (built-ins first, by family and difficulty), then entry-point plug-ins;
    ``rg:`` names and module paths are open-ended, so not listed."""
    _register_builtins()
    return [*_FACTORIES, *sorted(set(_entry_points()) - set(_FACTORIES))]


def _load_module_factory(name: str) -> Task:
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TaskDataError(f"task {name!r}: cannot import module {module_name!r} ({error})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise TaskDataError(f"task {name!r}: module {module_name!r} has no callable {attribute!r}")
    return _checked(name, factory(name))


def _checked(name: str, task: object) -> Task:
    if not isinstance(task, Task):
        raise TaskDataError(f"task {name!r}: factory returned {type(task).__name__}, not a Task")
    return task


@functools.cache
def get_task(name: str) -> Task:
    """The task called `name`; an unknown name raises TaskDataError suggesting the closest known names."""
    _register_builtins()
    if not isinstance(name, str) or not name.strip():
        raise TaskDataError(f"task name must be a non-empty string, got {name!r}")
    name = name.strip()
    base, _, options = name.partition("?")
    if base in _FACTORIES:
        task = _checked(name, _FACTORIES[base](name))
        if options and not task.takes_reward_options:
            raise TaskDataError(f"task {name!r}: {base!r} takes no reward options")
        return task
    if name.startswith("rg:"):
        from openrlhf_mt.tasks.reasoning_gym_task import make_reasoning_gym_task

        return make_reasoning_gym_task(name)
    entry_points = _entry_points()
    if name in entry_points:
        try:
            factory = entry_points[name].load()
        except Exception as error:
            raise TaskDataError(
                f"task {name!r}: entry point {entry_points[name].value!r} (group {ENTRY_POINT_GROUP}) "
                f"failed to load: {error!r}"
            ) from error
        return _checked(name, factory(name))
    if ":" in name:
        return _load_module_factory(name)
    known = list_tasks()
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else "."
    raise TaskDataError(
        f"unknown task {name!r}{hint} Known tasks: {', '.join(known)}; also 'rg:<reasoning-gym dataset>' "
        f"and '<module.path>:<factory>'."
    )


@functools.cache
def _register_builtins() -> None:
    from openrlhf_mt.tasks.paper import PAPER_TASKS
    from openrlhf_mt.tasks.tiny import TINY_TASKS

    for name, make in {**PAPER_TASKS, **TINY_TASKS}.items():
        _FACTORIES.setdefault(name, make)
