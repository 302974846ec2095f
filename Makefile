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
	$(PY) -m pip install -q -e '.[test,flax,tf,convert]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# Warm-start bert2bert from MiniLM, fine-tune it on WordNet definitions, print ROUGE-L before/after and samples.
# `make demo DEMO_ARGS=--from-scratch DEMO_OUT=tmp/demo-scratch`: the same architecture from random weights.
DEMO_ARGS ?=
DEMO_OUT ?= tmp/demo
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/warmstart train $(DEMO_ARGS) \
		--train-file data/wordnet_defs/train.jsonl --eval-file data/wordnet_defs/test.jsonl \
		--output-dir $(DEMO_OUT) --overwrite-output-dir \
		--max-steps 400 --batch-size 32 --learning-rate 3e-4 --warmup-steps 40 --weight-decay 0.01 \
		--max-source-length 64 --max-target-length 64 \
		--eval-before --eval-examples 200 --max-new-tokens 32 --no-repeat-ngram-size 3

bench: $(STAMP)
	$(PY) bench/encoder.py

clean:
	rm -rf $(VENV) build *.egg-info
