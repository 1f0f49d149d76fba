# skiptool: `make demo` runs the main job, `make test` the test suite.
# Both create .venv on first use; re-running `make install` with nothing changed is a no-op.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash egs/demo/run.sh

clean:
	rm -rf $(VENV) egs/*/data egs/*/dump egs/*/exp
