"""Everything that talks to L1: the anvil development node, contract artifacts and bindings."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
"""The checkout this package runs from (an editable install or the Docker image)."""
