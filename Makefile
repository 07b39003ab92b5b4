# The two commands of the README, and a few helpers. Everything runs in a local virtualenv
# (.venv) that the first command creates; `environment.yml` is the same set of pins for conda.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= default
NB      ?=
PARAMS  ?=

# Data root: the shared datasets beside the checkout when present, else the user's cache.
SHARED_DATA := $(abspath ../shared/data)
export QDGS_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),$(HOME)/.cache/qdgs/data)

.PHONY: setup book test chapter clean models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[book,test]"
	# stale pins upstream: both work with the torch above, so install them without their deps
	$(PY) -m pip install -q --no-deps gan-face-generate==1.1.1 facenet-pytorch==2.6.0
	touch $@

setup: $(VENV)/.installed  ## create the environment

book: setup  ## execute every chapter on $(PROFILE) and build the HTML book into _build/book/_build/html
	$(PY) -m qdgs.cli book --profile $(PROFILE)

test: setup browser  ## unit tests, notebook smoke runs and the book build
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing on purpose" >&2; fi; \
	exit $$rc

models: setup  ## reproduce the committed models: the light-skewed face generator (lib/qdgs/generators/weights) and chapter 01's VAEs (lib/qdgs/committed)
	OMP_NUM_THREADS=1 $(PY) -m qdgs.generators.skewed_dcgan
	$(PY) -m qdgs.committed_models

chapter: setup  ## run one notebook: make chapter NB=01 PROFILE=smoke PARAMS="iterations=300 seed=1"
	@test -n "$(NB)" || { echo "make chapter needs NB=<notebook>, e.g. NB=01"; exit 2; }
	$(PY) -m qdgs.cli run $(NB) --profile $(PROFILE) $(foreach p,$(PARAMS),-p $(p))

# Publishing: chromium renders the built book for the reader's-eye check and prints the PDF.
CHROMIUM ?= /usr/bin/chromium
REMOTE   ?= origin
export QDGS_CHROMIUM := $(CHROMIUM)

.PHONY: browser publish pdf readme-results

browser:  ## install Debian's chromium when missing (as root), used headless by the checks and the PDF
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	else echo "make browser: no chromium at $(CHROMIUM). Install it as root (apt-get install" \
		"--no-install-recommends chromium), or pass CHROMIUM=/path/to/chromium" >&2; exit 1; fi

# The paths (_build/book/_build/html, _build/results, README.md) are the commands' defaults
# for the project they run in (qdgs.project): one definition, shared with `qdgs book`.
publish: setup browser  ## check the built book in chromium, then push it to the gh-pages branch of $(REMOTE)
	$(PY) -m qdgs.publish push --remote $(REMOTE)

pdf: setup browser  ## print the built book, chapters in reading order, to _build/qdgs-book.pdf
	$(PY) -m qdgs.publish pdf

readme-results: setup  ## rewrite README's "Results at a glance" from the results that `make book` recorded in _build/results
	$(PY) -m qdgs.publish readme

clean:  ## remove the build tree (the artifact cache in ~/.cache/qdgs stays)
	rm -rf _build
