"""A slow fake evaluation: ``fake_eval.py CHECKPOINT`` sleeps, then prints ``key=value`` metrics."""

import sys
import time
from pathlib import Path

time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.5)
print(f"ckpt_bytes={Path(sys.argv[1]).stat().st_size} acc=0.5")
