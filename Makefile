# Set-up in two commands (README): `make demo` runs the dance demo on the sample footage, `make test` the tests.
# Each creates the virtual environment and fetches the sample first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GEN_TYPE ?= 1

.PHONY: demo test sample setup clean

demo: sample
	$(BIN)/python src/DanceDemo.py --gen-type $(GEN_TYPE)

test: sample
	$(BIN)/python -m pytest tests

sample: setup
	$(BIN)/python data/fetch_sample.py

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' || \
	  { echo "error: $(PYTHON) is not Python 3.10 to 3.12 (mediapipe 0.10.21 needs one): make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

clean:
	rm -rf $(VENV) out data/sample
