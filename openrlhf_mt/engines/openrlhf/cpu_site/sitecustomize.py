"""Loaded at start-up by every Python process whose PYTHONPATH starts with this folder.

`openrlhf-mt train-ray --mt.cpu` puts it there for Ray's workers (and vLLM's engine process), so
that each one bridges OpenRLHF's CUDA assumptions when it imports OpenRLHF or vLLM (see ../cpu.py).
It then runs the sitecustomize this one shadows, if the interpreter has one.
"""

import importlib.machinery
import importlib.util
import os
import sys

if os.environ.get("OPENRLHF_MT_CPU") == "1":
    from openrlhf_mt.engines.openrlhf.cpu import install_hooks

    install_hooks()

_here = os.path.dirname(os.path.abspath(__file__))
_shadowed = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here]
)
if _shadowed is not None and _shadowed.loader is not None:
    _shadowed.loader.exec_module(importlib.util.module_from_spec(_shadowed))
