"""Run every benchmark in this folder (`make bench`); each prints its own measurements."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
status = 0
for script in sorted(here.glob("*.py")):
    if script.name == "run.py" or "__main__" not in script.read_text(encoding="utf-8"):
        continue  # this runner, and modules the benchmarks import (fleetgen.py)
    print(f"== {script.name}", flush=True)
    status |= subprocess.run([sys.executable, str(script)], check=False).returncode
sys.exit(status)
