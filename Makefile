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

# The flagship recipe on its built-in corpora (about 20 minutes on 2 CPU cores), then one test image
# spoken by the trained MIB. `bash egs/demo/run.sh` is the one-minute toolkit check.
DEMO_SETUP := egs/coco_emt4/exp/shapes_espeak
demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash egs/coco_emt4/run.sh
	img=$$(head -n 1 egs/coco_emt4/data/shapes_espeak/image/test/img.scp | cut -d' ' -f2) && \
	  $(VENV)/bin/skiptool synth --from image --to speech "$$img" -o demo.wav --model $(DEMO_SETUP)/mib --overwrite && \
	  echo "demo.wav: speech generated from $$img (its captions: egs/coco_emt4/data/shapes_espeak/image/test/captions);" \
	       "scores in $(DEMO_SETUP)/RESULTS.md"

clean:
	rm -rf $(VENV) egs/*/data egs/*/dump egs/*/exp
