# One command each on a fresh machine: `make demo`, `make test`.
VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
# Pinned because these wheels lie on local disk here; an unpinned torch may pull a multi-GB build.
TORCH_PKGS ?= torch==2.14.1 torchvision==0.29.1
STAMP     := $(VENV)/.installed

.PHONY: install demo test check-sync check-structure nbtest pytest bench clean

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

test: check-sync check-structure nbtest pytest

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf build dist *.egg-info _proc _docs demo_out
