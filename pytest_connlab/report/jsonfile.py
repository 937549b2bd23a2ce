"""``--lab-json PATH``: every observation of the run, for tracking limits from run to run."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FIELDS = ("test", "profile", "provider", "limit", "expected", "observed", "ended_by",
          "fidelity", "verdict", "duration_s")


def write(path: Path, run_id: str, results: list[dict[str, Any]]) -> None:
    """Write the results atomically (a reader never sees half a file)."""
    entries = []
    for r in results:
        entry = {key: r.get(key) for key in FIELDS}
        entry["detail"] = {k: v for k, v in r.items() if k not in FIELDS}
        entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "results": entries}, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
