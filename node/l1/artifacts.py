"""The committed contract artifacts (ABI + bytecode) in contracts/artifacts/."""

import json
from functools import cache
from typing import Any

from . import REPO_ROOT

ARTIFACTS_DIR = REPO_ROOT / "contracts" / "artifacts"
"""Where ``make contracts`` writes one JSON file per contract."""


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The artifact of contract ``name``: ``{contractName, sourceName, abi, bytecode, ...}``."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no artifact for contract {name} in {ARTIFACTS_DIR}")
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact
