# One command each on a fresh machine: `make demo`, `make test`.
VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
# Pinned because these wheels lie on local disk here; an unpinned torch may pull a multi-GB build.
TORCH_PKGS ?= torch==2.14.1 torchvision==0.29.1
STAMP     := $(VENV)/.installed

.PHONY: install demo test check-sync check-structure nbtest pytest bench clean docs

# nbdev-export rewrites pyproject.toml with the same bytes (a new time): reinstall only when its content changes
PYPROJECT_SUM := $(VENV)/.pyproject.sha256
$(PYPROJECT_SUM): pyproject.toml
	@mkdir -p $(VENV)
	@$(PYTHON) -c "import hashlib, pathlib, sys; h = hashlib.sha256(pathlib.Path('pyproject.toml').read_bytes()).hexdigest(); \
	f = pathlib.Path(sys.argv[1]); f.exists() and f.read_text() == h or f.write_text(h)" $@

$(STAMP): $(PYPROJECT_SUM)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PKGS)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/imgcls demo --out demo_out

# The exported package and the clean notebooks must already be what nbdev would write.
check-sync: $(STAMP)
	$(PY) tools/check_sync.py

# Layers without import cycles, package imports at module level; chapters with a test under each definition.
check-structure: $(STAMP)
	$(PY) tools/check_layers.py
	$(PY) tools/check_notebooks.py

nbtest: $(STAMP)
	$(VENV)/bin/nbdev-test --n-workers 1 --timing --cell-timing-min 5

pytest: $(STAMP)
	$(PY) -m pytest -q --durations=12 tests

# The notebooks and pytest run side by side, one model thread each (OMP_NUM_THREADS, read by `compute_threads`):
# alone, each keeps about one of two cores busy (decoding, Python, subprocesses, a browser); two processes with
# a thread per core each would oversubscribe the cores. --output-sync keeps each one's log in one piece.
# `make test TEST_JOBS=1` runs them one after the other with every core for each.
TEST_JOBS ?= 2
TEST_ENV  := $(if $(filter 1,$(TEST_JOBS)),,OMP_NUM_THREADS=1)
test: check-sync check-structure
	$(TEST_ENV) $(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target nbtest pytest

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) benchmarks/bench_train.py

# The documentation site in _docs/, offline (open _docs/index.html): nbdev's processing of nbs/ into _proc/, every
# notebook executed, mkdocs-material; --check fails on a missing page, a broken link or anchor, an error output.
docs: $(STAMP)
	$(PY) tools/build_docs.py --check

clean:
	rm -rf build dist *.egg-info _proc _docs demo_out
