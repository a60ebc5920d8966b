# vodpipe — two commands: `make demo` (the pipeline on a real clip) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
INPUT  ?=
STAMP  := $(VENV)/.installed

.PHONY: demo test bench up lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

## Transcode a real clip through the whole local pipeline (INPUT=path/to/video to use your own).
demo: $(STAMP)
	$(BIN)/vodpipe demo $(INPUT)

## Run the whole test suite (unit, contract, handlers, end to end). CI runs exactly this.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmark: pipeline vs one hand-written ffmpeg command for the same ladder (INPUT=... optional).
bench: $(STAMP)
	$(BIN)/python -m infra.local.bench $(INPUT)

## Run the local cloud in the foreground (Ctrl-C stops it).
up: $(STAMP)
	$(BIN)/vodpipe up

clean:
	rm -rf $(VENV) .pytest_cache output .vodpipe
