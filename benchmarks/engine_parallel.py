"""Two engine processes vs one on a 200-component app (2 cores here): the speed-up of splitting rounds.

Prints seconds for a first and a warm render with each setting, and the warm ratio (one / two).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_scale import app

from velapy.bundle.dryrun import dry_run_blocks
from velapy.cue.engine import Evaluator, select_runner
from velapy.pipeline import Inputs, load


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.yaml"
        path.write_text(yaml.safe_dump(app(200)))
        warm: dict[int, float] = {}
        for parallel in (1, 2):
            with Evaluator(select_runner(), parallel=parallel) as ev:
                loaded = load(Inputs(str(path)), None, ev)
                start = time.perf_counter()
                dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
                first = time.perf_counter() - start
                start = time.perf_counter()
                dry_run_blocks(loaded.app, loaded.registry, ev, loaded.hub)
                warm[parallel] = time.perf_counter() - start
                print(f"engine processes {parallel}: first {first:.2f}s, warm {warm[parallel]:.2f}s")
        print(f"speed-up of two processes (warm): {warm[1] / warm[2]:.2f}x")


if __name__ == "__main__":
    main()
