# Convenience targets; the scripts do the work (and need no make).
.PHONY: run demo test down bench lint
run:
	scripts/run-firmware
demo:
	scripts/demo
test:
	scripts/test
down:
	scripts/lab down; firmware/lab down
bench:
	cargo build --release && scripts/bench-setup && scripts/bench-status
lint:
	cargo fmt --check && cargo clippy --all-targets -- -D warnings
