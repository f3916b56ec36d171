"""The pure core (node.protocol) imports nothing that does I/O or runs an event loop."""

import ast
import subprocess
import sys
from pathlib import Path

import node.protocol

PROTOCOL_DIR = Path(node.protocol.__file__).parent

ALLOWED_TOP_LEVEL = frozenset(
    {
        # standard library modules without I/O or concurrency
        "__future__",
        "abc",
        "bisect",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "itertools",
        "math",
        "operator",
        "re",
        "typing",
        "types",
        # pure computation libraries
        "rlp",
        "eth_keys",
        "coincurve",
        "sha3",
    }
)
"""Everything node.protocol may import directly, besides itself."""

FORBIDDEN_AT_RUNTIME = ("asyncio", "trio", "aiohttp", "plyvel", "web3", "requests", "websockets")
"""Libraries that must not even be loaded transitively by importing the pure core."""


def direct_imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) for every import statement in one file."""
    found: list[tuple[int, str]] = []
    for stmt in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(stmt, ast.Import):
            found.extend((0, alias.name) for alias in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            found.append((stmt.level, stmt.module or ""))
    return found


def test_protocol_imports_only_allowed_modules() -> None:
    offenders = []
    files = sorted(PROTOCOL_DIR.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for level, module in direct_imports(path):
            if level == 1:
                continue  # a sibling module of node.protocol
            top = module.split(".")[0]
            if level > 1 or (
                top not in ALLOWED_TOP_LEVEL and not module.startswith("node.protocol")
            ):
                offenders.append(f"{path.name}: {'.' * level}{module}")
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom ..storage import db\nfrom plyvel import DB\n")
    assert direct_imports(bad) == [(0, "asyncio"), (2, "storage"), (0, "plyvel")]


def test_importing_the_core_loads_no_io_library() -> None:
    modules = [f"node.protocol.{p.stem}" for p in sorted(PROTOCOL_DIR.glob("*.py"))]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print(','.join(m for m in {FORBIDDEN_AT_RUNTIME!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
