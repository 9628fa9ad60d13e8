"""Run every benchmark in turn (`make bench`); each prints its own table with ratios to target.

The packaged-app startup bench runs only when dist/unetseg exists (`make dist`), and the GPU
checks only where CUDA is available.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["inference_speed.py", "train_speed.py", "memory_8k.py", "quality.py", "independent_quality.py",
           "retrain.py", "refine_cost.py", "gui_bench.py", "startup_frozen.py", "gpu_check.py"]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        if name == "startup_frozen.py" and not (HERE.parent / "dist" / "unetseg").is_dir():
            print(f"== {name}: skipped (no dist/unetseg; run `make dist`)\n", flush=True)
            continue
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)]).returncode != 0:
            failed.append(name)
        print(flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
