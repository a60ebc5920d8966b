# vodpipe — two commands: `make demo` (the pipeline on a real clip) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
INPUT  ?=
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench bench-pictures load package up clean

# ffmpeg + ffprobe: Debian's package (x264, AAC; ffprobe that reads MPEG-TS). Installed with
# apt-get when missing: directly as root, through sudo otherwise.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: ffmpeg node chromium console deps
ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  echo "installing ffmpeg (Debian package)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg; }

# Node.js and npm (Debian's) vendor the console's third-party assets; chromium (Debian's) runs
# the browser tests through Playwright, which never downloads a browser of its own.
node:
	@command -v npm >/dev/null || { \
	  echo "installing Node.js and npm (Debian packages)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; }

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

# The web console's vendored assets (hls.js, uPlot) from the npm registry, pinned by
# console/package-lock.json, copied into console/vendor/ (served as static files, no CDN).
CONSOLE_STAMP := console/vendor/.installed
$(CONSOLE_STAMP): console/package.json console/package-lock.json
	cd console && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p console/vendor
	cp console/node_modules/hls.js/dist/hls.min.js console/node_modules/uplot/dist/uPlot.iife.min.js \
	   console/node_modules/uplot/dist/uPlot.min.css console/vendor/
	touch $(CONSOLE_STAMP)

console: node $(CONSOLE_STAMP)

deps: ffmpeg console $(STAMP)

# checkov, the CloudFormation security scanner, in its own venv: its pinned dependencies
# (constraints-scan.txt) conflict with the app's. The test suite scans the packaged template.
SCAN_VENV  ?= .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): constraints-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r constraints-scan.txt
	touch $(SCAN_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

## Transcode a real clip through the whole local pipeline (INPUT=path/to/video to use your own).
demo: deps
	$(BIN)/vodpipe demo $(INPUT)

## Run the whole test suite (unit, contract, handlers, media, end to end). CI runs exactly this.
test: deps chromium $(SCAN_STAMP)
	VODPIPE_CHECKOV=$(SCAN_VENV)/bin/checkov $(BIN)/python -m pytest $(PYTEST_ARGS)

## The fast tests only (under a minute): no ffmpeg or real media, no local cloud, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not media and not e2e and not browser" $(PYTEST_ARGS)

## Benchmark: pipeline vs one hand-written ffmpeg command for the same ladder (INPUT=... optional).
bench: deps
	$(BIN)/python -m infra.local.drills.bench $(INPUT)

## What the picture conversions cost (tone mapping, deinterlacing): the reference ladder on the
## bench clip as SDR, HLG and 1080i25, with and without them (docs/pictures.md).
bench-pictures: deps
	$(BIN)/python -m infra.local.drills.pictures

## Load drill: 50 uploads at once on a fresh local cloud (INPUT=... optional); prints the report.
load: deps
	$(BIN)/python -m infra.local.drills.load $(INPUT)

## Package for AWS: chalice package + the template's per-function roles -> out/sam.yaml, out/deployment.zip
## (the local cloud runs the functions from this package and rebuilds it when a source changed)
package: deps
	$(BIN)/python -m infra.package out

## Run the local cloud in the foreground (Ctrl-C stops it).
up: deps
	$(BIN)/vodpipe up

clean:
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache output .vodpipe out console/node_modules console/vendor
