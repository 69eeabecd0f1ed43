# The commands of the README.
.PHONY: test demo bench deps charm fuzz

FUZZ_SECONDS ?= 600

test:            ## install what the tests need, then fmt, clippy and every test
	bash scripts/test.sh

demo:            ## a real encrypted backup + restore of a sample directory to a local file:// target
	bash scripts/demo.sh

bench:           ## ours vs duplicity 0.8.22, restic, borg: file, SFTP, S3 (release build; README "Benchmark")
	bash bench/run.sh $(BENCH_ARGS)

fuzz:            ## every cargo-fuzz target (fuzz/) for FUZZ_SECONDS each, one after the other (nightly; README "Fuzzing")
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh all

deps:            ## only the Debian packages
	bash scripts/setup-deps.sh

charm:           ## build/duplicity.charm: a release build of the binary (no test hooks), packed with dispatch and the charm's YAML
	cargo build --release --locked
	bash scripts/check-no-test-hooks.sh $${CARGO_TARGET_DIR:-target}/release/duplicity-charm
	bash scripts/pack-charm.sh $${CARGO_TARGET_DIR:-target}/release/duplicity-charm build/duplicity.charm
