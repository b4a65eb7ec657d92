# Two commands for a newcomer: `make demo` and `make test`. Both create .venv/ when missing
# and reuse it afterwards (the stamp is refreshed only when pyproject.toml changes).
VENV   := .venv
PY     := $(VENV)/bin/python
KEFU   := $(VENV)/bin/kefu
STAMP  := $(VENV)/.kefu-installed
SAMPLE ?= 亲，这件衣服能便宜点吗？今天下单什么时候发货，用什么快递？

.PHONY: setup demo test lint typecheck unit browser-deps bench bench-guardrail bench-draft bench-api eval clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(KEFU) index
	$(KEFU) draft "$(SAMPLE)"

# Debian's chromium and CJK fonts for the browser test of the eval report (never `playwright install`).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

lint: setup
	$(VENV)/bin/ruff check agent tests bench
	$(VENV)/bin/ruff format --check agent tests bench

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q

test: setup browser-deps lint typecheck unit

bench-guardrail: setup
	$(PY) bench/bench_guardrail.py

bench-draft: setup
	$(PY) bench/bench_draft.py

bench-api: setup
	$(PY) bench/bench_api.py

bench: bench-guardrail bench-draft bench-api

eval: setup
	$(KEFU) eval run eval/suites/script.yaml

clean:
	rm -rf $(VENV) .kefu .mypy_cache .ruff_cache .pytest_cache
