# camwarden: the two set-up commands are `make demo` and `make test` (see README.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit venv constraints sysdeps-demo sysdeps-test sysdeps-deb bench clean deb

# constraints.txt pins the versions the suite last passed with (refresh: make constraints)
$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# newest releases allowed by pyproject.toml; run `make test` before committing the new pins
constraints:
	$(BIN)/uv pip compile -q --python $(BIN)/python --extra dev --upgrade pyproject.toml \
		--no-header --no-annotate -o constraints.txt

sysdeps-demo:
	bash scripts/install-system-deps.sh demo

sysdeps-test:
	bash scripts/install-system-deps.sh test

sysdeps-deb:
	bash scripts/install-system-deps.sh deb

demo: sysdeps-demo venv
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: sysdeps-test venv lint typecheck
	@# byte-compile our packages once: tests start many agent and collector processes
	$(BIN)/python -m compileall -q protocol service agent server lab tests
	bash scripts/with-services.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Debian packages (agent and collector) for bookworm and trixie on amd64, arm64 and armhf into dist/deb
# (docs/adr/0004); DEB_ARGS="--release trixie --arch amd64"
deb: sysdeps-deb venv
	$(BIN)/python packaging/deb/build.py $(DEB_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
