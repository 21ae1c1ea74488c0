# StreamGate developer entry points. `make demo` and `make test` are the two that matter;
# both install what they need (scripts/setup.sh) and are safe to run again.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/streamgate/target
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: setup build up down demo test lint check-config images compose-up compose-down compose-test

setup:
	@scripts/setup.sh

build: setup
	cargo build --workspace --bins

up: build
	@scripts/stack.sh up

down:
	@scripts/stack.sh down

demo: up
	@scripts/demo.sh

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: setup
	@scripts/test.sh

# Container images built here (no registry): Debian bookworm bases by mmdebstrap, host-built
# release binaries (IMAGE_PROFILE=debug: the test build), podman (deploy/images/).
images: setup
	@scripts/images.sh

# The whole stack from the images (deploy/compose/compose.yaml, podman-compose).
compose-up: setup
	@scripts/compose.sh up

compose-down:
	@scripts/compose.sh down

# Up, the demo flow through the containers, down.
compose-test: setup
	@scripts/compose.sh test
