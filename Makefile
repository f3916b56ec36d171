# Ratchet: every target installs what it needs (a local virtualenv in .venv and the
# pinned npm tools in node_modules) on a fresh machine, then does its job.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_ARGS ?= -m "not slow"

.PHONY: help install devnet test test-slow lint typecheck contracts bench gas fuzz fuzz-rpc soak vectors clean

help:
	@echo "make devnet     start a local Ratchet devnet: anvil, contracts, a sequencer, a watcher"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make lint       ruff, strict mypy on the pure core, import contracts"
	@echo "make contracts  compile contracts/src with the pinned solc into contracts/artifacts"
	@echo "make bench      run the benchmarks in bench/ (JSON on stdout)"
	@echo "make gas        L1 gas report: posting, dispute moves, one-step proofs (JSON)"
	@echo "make fuzz       differential fuzz, Python STF vs OneStepExecutor, 100,000 steps"
	@echo "make fuzz-rpc   20,000 hostile JSON-RPC/WebSocket inputs: no crash, JSON-RPC errors only"
	@echo "make soak       100 SIGKILLs of the sequencer under load; no receipt may be lost"
	@echo "make vectors    regenerate the committed test vectors in tests/vectors/"

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# `npm install --no-save` rather than `npm ci`: the lock lists anvil's binary package
# for the platforms the registry served when it was written, and `npm ci` refuses a
# lock without every platform's optional package. Versions are pinned exactly in
# package.json and the lock's integrity hashes are still checked.
$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --no-save
	touch $@

# `make devnet DEVNET_ARGS="--port 9545"` passes options on (docs/devnet.md).
DEVNET_ARGS ?=
devnet: install
	$(VENV)/bin/ratchet devnet $(DEVNET_ARGS)

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Soaks and long searches marked `slow`, on demand (not in CI).
test-slow: install
	$(VENV)/bin/pytest -m slow

contracts: install
	node contracts/compile.mjs

vectors: $(PY_STAMP)
	$(PY) -m tests.vectors.generate

# Every benchmark prints JSON lines (kept in bench-results.jsonl), then one summary table.
bench: install
	@rm -f bench-results.jsonl
	@for module in $$(cd bench && ls *_bench.py | sed 's/[.]py$$//') gas_report watch_report; do \
		echo "bench.$$module ..." >&2; \
		$(PY) -m bench.$$module >> bench-results.jsonl || exit 1; \
	done
	@cat bench-results.jsonl
	@$(PY) -m bench.summary bench-results.jsonl

gas: install
	$(PY) -m bench.gas_report

# On demand: the differential test's generator and checker at scale (own anvil).
FUZZ_STEPS ?= 100000
fuzz: install
	$(PY) -m tests.differential.fuzz --steps $(FUZZ_STEPS)

# On demand: hostile input against a real sequencer (own data dir and port, no L1).
FUZZ_RPC_CASES ?= 20000
fuzz-rpc: install
	$(PY) -m tests.fuzz_rpc.run --cases $(FUZZ_RPC_CASES)

# On demand: 100 SIGKILLs of the sequencer under load, each restart checked.
SOAK_KILLS ?= 100
soak: install
	RATCHET_SOAK_KILLS=$(SOAK_KILLS) $(VENV)/bin/pytest -m slow -s tests/integration/test_sequencer_crash.py

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
