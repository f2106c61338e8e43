# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check install translations compile-translations lint format worker clean security

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

AXE := tests/e2e/axe/node_modules/.installed

## axe-core for the accessibility walk (tests/e2e/test_accessibility.py), pinned by
## tests/e2e/axe/package-lock.json; the browser tests fail without it.
$(AXE): tests/e2e/axe/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/e2e/axe --no-audit --no-fund --silent \
		&& touch $(AXE); else echo "npm not found: install nodejs and npm for the accessibility tests"; fi

install: $(STAMP) $(AXE)

compile-translations: $(STAMP)
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(VENV)/bin/pybabel compile --statistics -d translations; fi

## Extract messages and merge them into every catalog (then translate the new ones).
## The keywords are also in tests/test_translation_gate.py, which checks they match.
BABEL_KEYWORDS := -k _l -k lazy_gettext -k lazy_ngettext:1,2 -k lazy_pgettext:1c,2 \
	-k lazy_npgettext:1c,2,3
translations: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg $(BABEL_KEYWORDS) --add-comments=TRANSLATORS: \
		--no-location --sort-output --no-wrap --project="Recipient portal" \
		-o translations/messages.pot .
	$(VENV)/bin/pybabel -q update -N --no-wrap -i translations/messages.pot -d translations

run: $(STAMP) compile-translations
	$(PY) -m portal.launcher

## The whole suite, as CI runs it, in TEST_WORKERS processes (pytest-xdist; each has its
## own database, Redis database and temp folders: tests/helpers/parallel.py) and with the
## 25 slowest tests listed. pip-audit (marked "audit": it asks a vulnerability database
## over the network) runs in `make security` only. docs/ci.md describes the tiers.
TEST_WORKERS ?= 2
test: $(STAMP) $(AXE) compile-translations
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25 -m "not audit" $(PYTEST_ARGS)

## The fast tier for the inner loop, on TEST_WORKERS processes like `make test`: no worker
## processes, browsers, drills, 100k-row tests, schemathesis or bandit/pip-audit
## (tests/conftest.py marks those "slow"); `make test` runs everything.
check: $(STAMP) compile-translations
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" -q $(PYTEST_ARGS)

## The security checks (tests/security): tenant isolation, CSRF, headers, limits, XSS,
## CSV formulas, bandit and pip-audit; -rxs shows what pip-audit could not audit and why.
security: $(STAMP) compile-translations
	$(PY) -m pytest tests/security -q -rxs $(PYTEST_ARGS)

## ruff, and the layers of docs/architecture.md (import-linter, contract in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache
