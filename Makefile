# The two set-up commands of the README: `make quickstart` and `make test`.
# torch is pinned on the same pip line: an unpinned torch pulls the newest CUDA
# build (several GB); 2.13.0 resolves to the CPU wheel these machines carry.
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install --disable-pip-version-check -q torch==2.13.0
# This project installs as localmem-offline. A distribution named "localmem" in the same environment is
# either this checkout under its old name or PyPI's unrelated project of that name; both claim the
# `localmem` package and console script, so it is removed first.
DROP_OLD_NAME = $(PYTHON) -m pip uninstall --disable-pip-version-check -y -q localmem 2>/dev/null || true

.PHONY: install install-dev models quickstart test lint docs bench

install:
	$(DROP_OLD_NAME)
	$(PIP_INSTALL) -e .

install-dev:
	$(DROP_OLD_NAME)
	$(PIP_INSTALL) -e ".[dev]"

models:
	$(PYTHON) -m localmem models prepare

# Runs the Mem0 + Milvus quickstart offline, in a fresh folder each time.
quickstart: install models
	cd "$$(mktemp -d)" && HF_HUB_OFFLINE=1 $(PYTHON) "$(CURDIR)/examples/quickstart.py"

lint:
	$(PYTHON) -m ruff check localmem tests examples
	$(PYTHON) -m mypy

# The documentation site (docs/, mkdocs.yml), built with warnings as errors into a temp folder.
# No --quiet: mkdocs 1.6.1 then no longer counts warnings, and --strict passes a broken link.
docs:
	site="$$(mktemp -d)" && $(PYTHON) -m mkdocs build --strict -d "$$site/site" && rm -rf "$$site"

test: install-dev models lint docs
	$(PYTHON) -m pytest

# The published run reads the shared data beside the checkout (never copied into the repository).
BENCH_DATA ?= $(CURDIR)/../shared/data
bench: install-dev models
	$(PYTHON) -m localmem bench --data "$(BENCH_DATA)" --out benchmarks/results/latest
