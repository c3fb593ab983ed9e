# The two commands a fresh machine needs: `make demo` and `make test`.
BUILD_DIR ?= build

.PHONY: demo test build deps test-all clean

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

test: build
	@bash scripts/test.sh $(BUILD_DIR)

# Every test, the long ones included (their extra packages first).
test-all: build
	@ABLATE_TEST_ALL=1 bash scripts/install-deps.sh
	@ABLATE_TEST_ALL=1 bash scripts/test.sh $(BUILD_DIR)

build: deps
	@bash scripts/build.sh $(BUILD_DIR)

deps:
	@bash scripts/install-deps.sh

clean:
	rm -rf $(BUILD_DIR)
