# Ratchet in one image: `ratchet sequencer`, `ratchet watch`, `ratchet deploy`,
# `ratchet devnet` (anvil from npm is inside) and the traders' commands.
#
#   docker build -t ratchet .
#
# A devnet. It binds 127.0.0.1 (anvil, the sequencer, the watcher's metrics), so it
# shares the host's network (Linux); without --network host, reach it with docker exec.
# /app/data is /data, so its default data dir ./data/devnet is in the volume:
#
#   docker run --rm -it --init --network host --name ratchet-devnet \
#       -v ratchet-devnet:/data ratchet devnet
#   docker exec -it ratchet-devnet python examples/fraud.py --devnet data/devnet/devnet.json
#
# A rollup of your own (docs/operations.md). Its config directory is mounted at /config
# (`ratchet deploy` writes the contract addresses into it, so that one mount is
# writable), each daemon's state in its own volume at /data, keys from the environment
# or from a mounted key file, never from the image:
#
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/rollup:/config" \
#       -e RATCHET_DEPLOY_KEY ratchet deploy --config /config/sequencer.toml
#   docker run -d --init --name ratchet-sequencer -p 8547:8547 \
#       -v "$PWD/rollup:/config:ro" -v ratchet-sequencer:/data \
#       -e RATCHET_STORAGE_DATA_DIR=/data -e RATCHET_RPC_HOST=0.0.0.0 \
#       -e RATCHET_SEQUENCER_KEY ratchet sequencer --config /config/sequencer.toml
#   docker run -d --init --name ratchet-watcher \
#       -v "$PWD/rollup:/config:ro" -v ratchet-watcher:/data \
#       -e RATCHET_STORAGE_DATA_DIR=/data -e RATCHET_WATCHER_KEY \
#       ratchet watch --config /config/watcher.toml
#
# The install step is `make install`, the very target `make devnet` and `make test`
# run on a developer's machine, so the image and a checkout cannot drift apart: a
# virtualenv in /app/.venv with the pinned Python packages, and node_modules with the
# pinned anvil and solc. tests/unit/test_dockerfile.py checks that every file those
# recipes read is copied first.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install --yes --no-install-recommends make nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# What `make install` reads: the Makefile, its install stamps' prerequisites, the
# README (setup.cfg's long_description) and the packages pip installs (editable).
COPY Makefile setup.cfg pyproject.toml constraints.txt package.json package-lock.json README.md ./
COPY node ./node
COPY challenger ./challenger
RUN make install

# What the commands read at run time: the committed contract artifacts (deploy, the
# L1 bindings), the devnet's config and markets, and the examples.
COPY contracts ./contracts
COPY configs ./configs
COPY examples ./examples

# The daemons run unprivileged; /data is theirs (a fresh named volume takes its owner),
# and ./data, where the devnet writes by default, is /data.
RUN useradd --system --create-home --home-dir /home/ratchet --shell /usr/sbin/nologin ratchet \
    && mkdir /data \
    && chown ratchet:ratchet /data \
    && ln -s /data /app/data
USER ratchet

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8547
ENTRYPOINT ["ratchet"]
CMD ["--help"]
