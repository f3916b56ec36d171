"""The committed contract artifacts are exactly what the pinned solc makes of the sources."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from node.l1.artifacts import ARTIFACTS_DIR

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed to run solc")
def test_artifacts_match_sources() -> None:
    out = subprocess.run(
        ["node", str(ROOT / "contracts" / "compile.mjs"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr


def test_pinned_compiler_made_every_artifact() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"]
    artifacts = sorted(ARTIFACTS_DIR.glob("*.json"))
    assert artifacts
    for path in artifacts:
        artifact = json.loads(path.read_text())
        assert artifact["compiler"].startswith(pinned + "+"), path.name
        assert artifact["bytecode"].startswith("0x")
        assert len(artifact["deployedBytecode"]) // 2 - 1 <= 24576, path.name
