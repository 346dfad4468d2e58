# Every target is self-sufficient on a fresh machine: it creates .venv and installs
# the project (with its dev tools) before doing anything else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   ?= data
# buf (lint, format, breaking for proto/) comes from npm, pinned by package-lock.json
# (--ignore-scripts: the launcher runs the platform binary from the lock; nothing runs at install).
NPM        ?= npm
BUF        := node_modules/.bin/buf
NODE_STAMP := node_modules/.installed-stamp
SYSTEM_STAMP := $(VENV)/.system-deps-stamp
# The released API that `buf breaking` compares against; refreshed only by `make proto-release`.
API_RELEASE := releases/licenceledger-v1.binpb

.PHONY: setup run test lint typecheck pytest bench clean proto proto-check api-lint proto-release

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Debian packages (a CJK font); see the script for why.
$(SYSTEM_STAMP): scripts/system_deps.sh
	scripts/system_deps.sh
	mkdir -p $(VENV) && touch $(SYSTEM_STAMP)

$(NODE_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --ignore-scripts
	touch $(NODE_STAMP)

setup: $(STAMP) $(SYSTEM_STAMP)

run: setup
	$(BIN)/licence-ledger serve --data $(DATA)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

# Regenerate the Python package licenceledger/ (messages, gRPC stubs, .pyi types) from proto/.
proto: setup
	PROTO_PYTHON=$(BIN)/python scripts/gen_proto.sh

# Fail if the committed licenceledger/ is not what `make proto` would generate.
proto-check: setup
	PROTO_PYTHON=$(BIN)/python scripts/gen_proto.sh --check

# The API's own checks: buf lint (STANDARD + COMMENTS), formatting, and no breaking
# change against the released descriptor set.
api-lint: $(NODE_STAMP)
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(BUF) breaking --against $(API_RELEASE)

# Deliberately record the current API as the release later changes must not break (it
# skips the breaking check on purpose: this is how an accepted change is recorded).
proto-release: $(NODE_STAMP)
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(BUF) build --exclude-source-info -o $(API_RELEASE)

test: lint typecheck api-lint proto-check pytest

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
