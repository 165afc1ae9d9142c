# Thin wrappers over the nanodex CLI. Variables: REPO (repository to extract), WS (workspace), ARGS (extra flags).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/nanodex/target
REPO ?= $(shell python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
WS ?= .nanodex
NANODEX = cargo run --release --quiet -p nanodex-cli --
.PHONY: setup extract graph-inspect test bench

setup:
	bash scripts/setup.sh
	cargo build --release -p nanodex-cli

extract:
	$(NANODEX) extract "$(REPO)" --workspace "$(WS)" $(ARGS)

graph-inspect:
	$(NANODEX) graph-inspect --workspace "$(WS)" $(ARGS)

SHELL := bash
test:
	cargo test --workspace --locked 2>&1 | tee /tmp/nanodex-test.log; \
	status=$${PIPESTATUS[0]}; \
	grep -E '^test result:' /tmp/nanodex-test.log | awk '{p+=$$4; f+=$$6; i+=$$8} END {printf "summary: %d passed, %d failed, %d skipped\n", p, f, i}'; \
	exit $$status

bench:
	bash bench/extract.sh
