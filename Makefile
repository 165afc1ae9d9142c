# Thin wrappers over the nanodex CLI. Variables: REPO (repository to extract), WS (workspace), ARGS (extra flags).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/nanodex/target
REPO ?= $(shell python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
WS ?= .nanodex
NANODEX = cargo run --release --quiet -p nanodex-cli --
.PHONY: setup all extract graph-inspect brain brain-embed search train-lora train-qlora generate test app e2e test-remote bench-app bench bench-embed bench-brain bench-train bench-learn check-cuda

setup:
	bash scripts/setup.sh
	cargo build --release -p nanodex-cli

# The main job: extract the repository's graph, then build its brain (summaries, embeddings, search index).
all: extract brain

extract:
	$(NANODEX) extract "$(REPO)" --workspace "$(WS)" $(ARGS)

graph-inspect:
	$(NANODEX) graph-inspect --workspace "$(WS)" $(ARGS)

brain:
	$(NANODEX) brain --workspace "$(WS)" $(ARGS)

brain-embed:
	$(NANODEX) brain-embed --workspace "$(WS)" $(ARGS)

# make search Q="parse JSON from a string"
search:
	$(NANODEX) search "$(Q)" --workspace "$(WS)" $(ARGS)

# Fine-tuning. DATASET: chat JSONL ({id, prompt, response, refs} or {"messages": [...]}); BASE: a Hugging Face
# folder, a .gguf file or a cached hub id (default: the SmolLM2-135M-Instruct GGUF that scripts/models.sh installs).
MODELS ?= $(HOME)/.cache/nanodex/models
BASE ?= $(MODELS)/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
DATASET ?= tests/fixtures/train/facts.jsonl
PROJECT ?= $(notdir $(abspath $(REPO)))
OUT ?= models/$(PROJECT)-nanodex-lora
train-lora:
	$(NANODEX) train --dataset "$(DATASET)" --base "$(BASE)" --out "$(OUT)" --config config/train_lora.yaml $(ARGS)

train-qlora:
	$(NANODEX) train --dataset "$(DATASET)" --base "$(BASE)" --out "$(OUT:-lora=-qlora)" --config config/train_qlora.yaml $(ARGS)

# make generate P="Which module raises InvoiceError?" [ADAPTER=models/x-nanodex-lora]
generate:
	$(NANODEX) generate --base "$(BASE)" $(if $(ADAPTER),--adapter "$(ADAPTER)") --prompt "$(P)" $(ARGS)

# Every test: Rust (workspace), UI unit tests (vitest) and the desktop app end to end; prints summary lines.
test:
	bash scripts/test.sh

# The remote graph store against a real SurrealDB server on 127.0.0.1 (builds SurrealDB's server once, ~25 min; not
# part of CI): the server's graph equals the embedded store's, also after an incremental run.
test-remote:
	bash scripts/test_remote.sh

# The desktop app (Tauri v2): `make app` opens the window; `make e2e` drives it under Xvfb with WebDriver.
app:
	cargo run --release -p nanodex-app

e2e:
	bash scripts/e2e.sh

# The app on the installed Python standard library: time to first graph, frame times while panning (PROFILE=release for a release build).
bench-app:
	NANODEX_E2E_STDLIB=1 bash scripts/e2e.sh

bench: bench-embed bench-brain
	bash bench/extract.sh

bench-embed:
	bash bench/embed.sh

bench-brain:
	bash bench/brain.sh

# LoRA speed and memory against PyTorch + PEFT (installs the 5.6 GB torch peer on first use; not part of CI).
bench-train:
	bash bench/lora_peer.sh

# The CUDA build type-checks (installs Debian's CUDA 11.8 toolkit, ~1.6 GB, when nvcc is missing; not part of CI).
check-cuda:
	bash scripts/check_cuda.sh

# Learning: 100 invented facts, trained on SmolLM2-135M on the CPU; accuracy on the training and reworded questions.
bench-learn:
	bash bench/learn.sh
