# One image for `ratchet sequencer`, `ratchet watch` and `ratchet devnet`.
#
#   docker build -t ratchet .
#   docker run --rm -p 8547:8547 -v ratchet-data:/data ratchet sequencer --config configs/devnet.toml
#   docker run --rm -v ratchet-watch:/data ratchet watch --config configs/devnet.toml
#
# The install step is `make install`, the very target `make test` and `make devnet`
# use, so the image and a developer checkout cannot drift apart: a local virtualenv
# in /app/.venv with the pinned Python packages, and node_modules with the pinned
# anvil and solc from npm.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install --yes --no-install-recommends make nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json setup.cfg pyproject.toml constraints.txt Makefile README.md ./
COPY node ./node
COPY challenger ./challenger
COPY contracts ./contracts
COPY configs ./configs
RUN make install

ENV PATH="/app/.venv/bin:${PATH}" \
    RATCHET_STORAGE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8547
ENTRYPOINT ["ratchet"]
CMD ["--help"]
