"""A training loop for the Slurm tests: STEPS steps of STEP_S seconds, a checkpoint (JSON, written
atomically) after every step, resume from it at start, and a stop on ``$LABCOAT_STOP_FILE``
(checkpoint, exit 0, the file left in place: the batch script then requeues) unless
``--ignore-stop``; on finishing it removes the stop file (nothing to requeue). Prints ``step N`` lines the watchdog reads.

    python trainer.py --steps 40 --step-s 1 --ckpt ckpt.json [--ignore-stop]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--step-s", type=float, default=1.0)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--ignore-stop", action="store_true")
    args = p.parse_args()
    step = 0
    if os.path.exists(args.ckpt):
        with open(args.ckpt) as fh:
            step = json.load(fh)["step"]
        print(f"resumed from checkpoint step {step}", flush=True)
    restart = os.environ.get("SLURM_RESTART_COUNT", "0")
    print(f"start at step {step} (restart {restart})", flush=True)
    stop_file = os.environ.get("LABCOAT_STOP_FILE")
    while step < args.steps:
        time.sleep(args.step_s)
        step += 1
        with open(args.ckpt + ".tmp", "w") as fh:
            json.dump({"step": step}, fh)
        os.replace(args.ckpt + ".tmp", args.ckpt)
        print(f"step {step} loss {1.0 / step:.4f}", flush=True)
        if stop_file and os.path.exists(stop_file) and not args.ignore_stop:
            print(f"stop requested: checkpoint at step {step} saved, exiting", flush=True)
            return 0
    if stop_file and os.path.exists(stop_file):  # finished anyway: no requeue wanted
        os.remove(stop_file)
    print(f"done at step {step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
