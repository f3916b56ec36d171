"""Fixtures of the integration tests (append new fixtures at the end of this file)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.l1.anvil import Anvil
from tests.integration.l1_env import Chain, System, deploy_system


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """An anvil of this test module's own: its tests move block time freely."""
    log = Path(tmp_path_factory.mktemp("anvil")) / "anvil.log"
    with Anvil(log_path=log) as node:
        yield Chain(node)
    assert node.process is None


@pytest.fixture
def system(chain: Chain) -> System:
    """A fresh rollup (TestToken, Bridge, Rollup, DisputeGame, alphabet executor) on the
    module's anvil."""
    return deploy_system(chain)
