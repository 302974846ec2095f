# Everything a fresh machine needs: `make demo` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here (not in pyproject) so the CPU wheel is used; an unpinned torch pulls CUDA.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: test demo install bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/warmstart encode \
		"A man is playing a guitar." \
		"Someone plays an instrument." \
		"The stock market fell sharply today." \
		"Shares dropped on the exchange."

bench: $(STAMP)
	$(PY) bench/encoder.py

clean:
	rm -rf $(VENV) build *.egg-info
