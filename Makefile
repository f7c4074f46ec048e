# certpilot: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck contracts unit demo sandbox bench bench-quick layer clean

# The tools and the pinned runtime dependencies, then certpilot itself, editable and with
# --no-deps: `.venv/bin/certpilot` and `.venv/bin/python -m certpilot` work from anywhere.
$(STAMP): requirements-dev.txt shared/requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Early 3.10 releases bundle a pip without editable installs of pyproject projects.
	$(PY) -m pip install --quiet --disable-pip-version-check "pip>=22.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -q -n 2  # two workers, one emulator each: the suite waits on I/O more than CPU

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

# The layering contracts of pyproject.toml [tool.importlinter].
contracts: $(STAMP)
	$(VENV)/bin/lint-imports --no-logo

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

demo: $(STAMP)
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy $(PY) scripts/demo.py

# The emulator with the demo estate, and the `export` lines that point certpilot at it.
sandbox: $(STAMP)
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy $(PY) scripts/sandbox.py

# Every benchmark script (benchmarks/results.py lists them), then benchmarks/RESULTS.md
# from their --json-out files: the date, the machine, the settings, target vs measured.
bench: $(STAMP)
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy $(PY) benchmarks/results.py

# The same at tiny sizes (a smoke run), into build/RESULTS-quick.md.
bench-quick: $(STAMP)
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy $(PY) benchmarks/results.py --quick

# The FC layer, build/layer.zip (`python/` = /opt/python in FC): certpilot plus its pinned
# runtime dependencies as Linux x86_64 wheels for FC's python3.10, byte code compiled by a
# python3.10 (found on PATH or in pyenv; LAYER_PYTHON=path names one), no tests or caches.
# The wheels are downloaded once into build/wheelhouse. Prints the zip's size and files.
layer: $(STAMP)
	$(PY) scripts/build_layer.py $(if $(LAYER_PYTHON),--python $(LAYER_PYTHON))

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
