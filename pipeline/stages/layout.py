"""The committed layout of a stage directory, readable without Spark (the report and the trainer need it)."""
from __future__ import annotations

import json

from pipeline import storage

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"


def is_committed(stage_uri: str) -> bool:
    return storage.exists(storage.join(stage_uri, SUCCESS))


def listed_files(stage_uri: str, subdir: str = "data") -> list[str]:
    """The files of `subdir` that the stage's `_SUCCESS` lists; [] when the stage has not committed."""
    if not is_committed(stage_uri):
        return []
    listing = json.loads(storage.read_bytes(storage.join(stage_uri, SUCCESS)))
    return [storage.join(stage_uri, p) for p in listing["files"].get(subdir, [])]
