# Set-up in two commands (README): `make demo` runs the dance demo on the sample footage, `make test` the tests.
# Each creates the virtual environment and fetches the sample first if needed. `make demo` uses the GAN
# (GEN_TYPE 4) and trains a small one on the sample first if there is none; `make demo GEN_TYPE=1` needs no model.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GEN_TYPE ?= 4

SAMPLE_SOURCE := data/sample/pose2sim_cam01.mp4
SAMPLE_TARGET := data/sample/pose2sim_cam02.mp4
MODELS := data/pose2sim_cam02/models
# The model each GEN_TYPE needs on the sample (none for 1), trained by the demo's recipes in config/.
SAMPLE_MODEL_2 := $(MODELS)/vanilla1_128.pt
SAMPLE_MODEL_3 := $(MODELS)/vanilla2_128.pt
SAMPLE_MODEL_4 := $(MODELS)/gan_256.pt

.PHONY: demo test app sample setup clean

demo: sample $(SAMPLE_MODEL_$(GEN_TYPE))
	$(BIN)/python src/DanceDemo.py --gen-type $(GEN_TYPE) --source $(SAMPLE_SOURCE) --target $(SAMPLE_TARGET)

test: sample
	$(BIN)/python -m pytest tests

# The web app on http://127.0.0.1:7860 (python src/App.py --help for the host and port).
app: sample
	$(BIN)/python src/App.py

sample: setup
	$(BIN)/python data/fetch_sample.py

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' || \
	  { echo "error: $(PYTHON) is not Python 3.10 to 3.12 (mediapipe 0.10.21 needs one): make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(SAMPLE_MODEL_2):
	$(BIN)/python src/GenVanillaNN.py --variant 1 --recipe config/demo_vanilla.py --target $(SAMPLE_TARGET)

$(SAMPLE_MODEL_3):
	$(BIN)/python src/GenVanillaNN.py --variant 2 --recipe config/demo_vanilla.py --target $(SAMPLE_TARGET)

$(SAMPLE_MODEL_4):
	$(BIN)/python src/GenGAN.py --recipe config/demo_gan.py --target $(SAMPLE_TARGET)

clean:
	rm -rf $(VENV) out data/sample data/pose2sim_cam01 data/pose2sim_cam02
