"""Are two run stores the same runs, bit for bit? A plain script: for every run file in the first store, the
file of the same name (the same key: config and code version) in the second, compared in its config and in
every epoch field but the seconds (which no two executions share). Used to check that a change kept every
run's bits, e.g. a fresh clone's main job against an earlier one on the same kind of CPU:

    python benchmarks/compare_stores.py OLD_RUNS_DIR NEW_RUNS_DIR

Prints one line per run that differs or is missing, then the counts, and how many runs of the second store
trained from shared first epochs or timed; exits 1 if any run differs or is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def without_seconds(run: dict) -> tuple:
    epochs = [{k: v for k, v in e.items() if not k.endswith("_seconds")} for e in run["epochs"]]
    return run["config"], epochs


def main(old: Path, new: Path) -> int:
    same = differ = missing = shared = timed = 0
    for path in sorted(old.glob("*.json")):
        other = new / path.name
        if not other.exists():
            print(f"missing in {new}: {path.name}")
            missing += 1
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        if without_seconds(a) == without_seconds(b):
            same += 1
        else:
            print(f"differs: {path.name}")
            differ += 1
        shared += "shared_epochs" in b["metadata"]
        timed += bool(b["metadata"].get("host_load"))
    print(
        f"identical {same}, different {differ}, missing {missing}; of the second store's: {shared} from "
        f"shared first epochs, {timed} timed"
    )
    return 1 if differ or missing or not same else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/compare_stores.py OLD_RUNS_DIR NEW_RUNS_DIR")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
