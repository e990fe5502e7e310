# The two commands of the README:  make run  (set up, then chat on the bundled corpus, or
# serve Slack when tokens are set)  and  make test  (set up, then the tests and the eval gate).
VENV := .venv
BYLINE := $(VENV)/bin/byline
export HF_HUB_OFFLINE := 1
export HAYSTACK_TELEMETRY_ENABLED := False

.PHONY: setup run test eval bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(BYLINE) run

test: setup
	$(VENV)/bin/pytest -q
	$(BYLINE) --data-dir build/ci-data eval --check

eval: setup
	$(BYLINE) eval --report build/eval-report.html

bench: setup
	$(BYLINE) bench all

clean:
	rm -rf build data
