"""Clean stops of a train-ray run: checkpoint after the current step, then end (exit 0).

    openrlhf-mt stop [--address HOST:PORT]     ask every run on that Ray cluster (default: RAY_ADDRESS)
    StopOnSignal(prog).install()               in the driver: SIGTERM / SIGINT do the same

SLURM sends SIGTERM before a time limit (`#SBATCH --signal=B:TERM@300` in scripts/slurm/train_ray.sbatch,
whose trap runs `openrlhf-mt stop`); `ray job stop` sends the driver SIGTERM but kills it a few seconds later
(RAY_JOB_STOP_WAIT_TIME_S), too soon for a checkpoint of a large model: prefer `openrlhf-mt stop`.
A stop is a flag on the run's TaskWeightActor: the trainer checkpoints the step it is in (whatever
--ckpt.save_steps says) and the generator produces no further batch, so upstream's loops end normally and
a later `--ckpt.load_enable` resumes exactly. A second signal to the driver aborts at once.
"""

from __future__ import annotations

import _thread
import argparse
import os
import signal
import sys
import threading
import time
from typing import Any

from openrlhf_mt.engines.openrlhf.weights_actor import ACTOR_NAME


class StopOnSignal:
    """The driver's SIGTERM / SIGINT handler: the first signal asks for a clean stop, the second aborts."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.received: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            print(f"{self.prog}: {name} again: aborting without a checkpoint", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.received = name
        print(
            f"{self.prog}: {name}: checkpointing after the current step, then stopping ({name} again aborts)",
            file=sys.stderr,
            flush=True,
        )
        threading.Thread(target=self.request, daemon=True).start()  # no Ray calls inside a signal handler

    def request(self) -> None:
        import ray

        for _ in range(60):  # the weights actor exists once the trainer has started
            try:
                ray.get(ray.get_actor(ACTOR_NAME).request_stop.remote())
                return
            except ValueError:
                time.sleep(1)
        print(f"{self.prog}: training had not started: nothing to checkpoint", file=sys.stderr, flush=True)
        _thread.interrupt_main()

    def report(self, ckpt_path: str) -> None:
        if self.received is not None:
            print(
                f"{self.prog}: stopped cleanly on {self.received}; the last step's checkpoint is in "
                f"{ckpt_path}. Resume: run the same command with --ckpt.load_enable",
                flush=True,
            )


def request_stop(address: str | None) -> list[tuple[str, int]]:
    """Ask every train-ray run on the Ray cluster at `address`; (namespace, last applied step) of each."""
    import ray
    from ray.util import list_named_actors

    ray.init(address=address or "auto", logging_level="ERROR", log_to_driver=False)
    try:
        runs = [a for a in list_named_actors(all_namespaces=True) if a["name"] == ACTOR_NAME]
        return [
            (
                run["namespace"],
                ray.get(ray.get_actor(ACTOR_NAME, namespace=run["namespace"]).request_stop.remote()),
            )
            for run in runs
        ]
    finally:
        ray.shutdown()


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="the Ray cluster (default: RAY_ADDRESS)"
    )
    args = parser.parse_args(argv)
    try:
        stopped = request_stop(args.address)
    except ConnectionError as error:
        print(f"{prog}: error: no Ray cluster at {args.address or 'auto'}: {error}", file=sys.stderr)
        return 2
    if not stopped:
        print(f"{prog}: no openrlhf-mt train-ray run on this Ray cluster", file=sys.stderr)
        return 1
    for namespace, step in stopped:
        print(f"{prog}: run in Ray namespace {namespace} (last step {step}) will checkpoint and stop")
    return 0
