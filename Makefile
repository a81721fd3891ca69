# polyfarm: every target first makes sure .venv exists and matches uv.lock.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
RUN := $(VENV)/bin
STAMP := $(VENV)/.synced

# The dashboard (dashboard/, React + Vite) is built with npm into the Python package
# (src/polyfarm/api/dashboard_build, committed), which the API serves at /. Running polyfarm
# therefore needs no Node.js; only `make dashboard`, after changing the dashboard, does. A test
# fails when a source changed without a rebuild.
DASHBOARD := dashboard
DASHBOARD_BUILT := src/polyfarm/api/dashboard_build/index.html
DASHBOARD_DEPS := $(DASHBOARD)/node_modules/.package-lock.json
DASHBOARD_SOURCES := $(shell find $(DASHBOARD)/src -type f 2>/dev/null) \
	$(addprefix $(DASHBOARD)/,index.html package.json vite.config.ts tsconfig.json openapi.json)

.PHONY: demo test check lint typecheck bench chaos clean dashboard chromium promtool openapi screenshots

# Bytecode compiled once at install: where PYTHONDONTWRITEBYTECODE is set, every command would
# otherwise compile its imports on each start (`polyfarm export --help`: 0.8 s, compiled 0.3 s;
# every command paid 1.9 s before they were loaded lazily).
$(STAMP): pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(UV) sync --frozen --compile-bytecode --python $(VENV)/bin/python
	@$(VENV)/bin/python -m compileall -q src >/dev/null
	@touch $(STAMP)

$(DASHBOARD_DEPS): $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20 or newer) is needed to build the dashboard" >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund
	@touch $@

$(DASHBOARD_BUILT): $(STAMP) $(DASHBOARD_DEPS) $(DASHBOARD_SOURCES)
	cd $(DASHBOARD) && npm run build
	$(RUN)/python -m polyfarm.api.dashboard_sources >/dev/null
	@touch $@

dashboard: $(DASHBOARD_BUILT)

# Regenerate the committed OpenAPI document the dashboard's types are generated from.
openapi: $(STAMP)
	$(RUN)/python -m polyfarm.api.openapi > $(DASHBOARD)/openapi.json

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here);
# Playwright's driver (a bundled Node) needs libatomic.so.1, which a minimal system lacks.
BROWSER_PACKAGES := chromium libatomic1
chromium:
	@if [ -x /usr/bin/chromium ] && /sbin/ldconfig -p | grep -q 'libatomic\.so\.1'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(BROWSER_PACKAGES) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else \
		echo "SKIPPING browser tests: installing $(BROWSER_PACKAGES) needs root (apt-get install $(BROWSER_PACKAGES))" >&2; \
	fi

# The alerting rules (deploy/prometheus) are tested with promtool, from Debian's prometheus
# package (installed without starting anything: its service needs systemd as init). The systemd
# units are checked with systemd-analyze (package systemd). Without them those tests skip.
promtool:
	@if command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing prometheus (promtool) for the alerting-rule tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
		echo "SKIPPING alerting-rule tests: installing prometheus (promtool) needs root" >&2; \
	fi

# Re-take the README's screenshots (docs/screenshots/*.png) with the browser tests.
screenshots: $(STAMP) chromium
	POLYFARM_UPDATE_SCREENSHOTS=1 $(RUN)/pytest -q tests/browser

demo: $(STAMP)
	$(RUN)/polyfarm demo

test: $(STAMP) chromium promtool
	$(RUN)/pytest

check: $(STAMP) $(DASHBOARD_DEPS) chromium promtool
	$(RUN)/ruff format --check src tests bench examples
	$(RUN)/ruff check src tests bench examples
	$(RUN)/mypy
	$(RUN)/mypy bench examples
	cd $(DASHBOARD) && npm run typecheck
	$(RUN)/uv export --frozen --no-hashes --no-emit-project --quiet > .venv/requirements.txt
	$(RUN)/pip-audit --requirement .venv/requirements.txt --no-deps --disable-pip --progress-spinner off
	$(RUN)/pytest

# Every benchmark, each printing its table and (with --json) a JSON last line. See BENCHMARKS.md.
bench: $(STAMP)
	$(RUN)/python bench/ingest.py
	$(RUN)/python bench/sim_scale.py
	$(RUN)/python bench/stream.py
	$(RUN)/python bench/cycle.py

# The daemon against the injured simulator; exits non-zero on any missing or duplicated trade.
chaos: $(STAMP)
	$(RUN)/python bench/chaos.py --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(DASHBOARD)/node_modules
