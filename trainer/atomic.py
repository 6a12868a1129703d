"""Files written whole or not at all: a temp file beside the target, then a rename (an interrupted run
leaves the old file or the new one, never half of one)."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, obj: object, indent: int = 1) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent))
    tmp.replace(path)
