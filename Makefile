# polyfarm: every target first makes sure .venv exists and matches uv.lock.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
RUN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: demo test check lint typecheck bench chaos clean

$(STAMP): pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(UV) sync --frozen --python $(VENV)/bin/python
	@touch $(STAMP)

demo: $(STAMP)
	$(RUN)/polyfarm demo

test: $(STAMP)
	$(RUN)/pytest

check: $(STAMP)
	$(RUN)/ruff format --check src tests bench
	$(RUN)/ruff check src tests bench
	$(RUN)/mypy
	$(RUN)/pytest

bench: $(STAMP)
	$(RUN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
