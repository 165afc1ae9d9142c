# Thin wrappers over the nanodex CLI. Variables: REPO (repository to extract), WS (workspace), ARGS (extra flags).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/nanodex/target
REPO ?= $(shell python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
WS ?= .nanodex
NANODEX = cargo run --release --quiet -p nanodex-cli --
.PHONY: setup all extract graph-inspect brain brain-embed search test bench bench-embed bench-brain

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

SHELL := bash
test:
	cargo test --workspace --locked 2>&1 | tee /tmp/nanodex-test.log; \
	status=$${PIPESTATUS[0]}; \
	grep -E '^test result:' /tmp/nanodex-test.log | awk '{p+=$$4; f+=$$6; i+=$$8} END {printf "summary: %d passed, %d failed, %d skipped\n", p, f, i}'; \
	exit $$status

bench: bench-embed bench-brain
	bash bench/extract.sh

bench-embed:
	bash bench/embed.sh

bench-brain:
	bash bench/brain.sh
