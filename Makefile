# driftradar — developer commands. `make test` and `make demo` create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test unit integration lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m "not integration" -q

integration: setup
	$(BIN)/pytest -m integration -q

test: lint
	$(BIN)/pytest -q

demo: setup
	$(BIN)/driftradar demo

bench: setup
	$(BIN)/python -m benchmarks.event_decode
	$(BIN)/python -m benchmarks.detector_speed
	$(BIN)/python -m benchmarks.detection_quality
	$(BIN)/python -m benchmarks.false_alarms
	$(BIN)/python -m benchmarks.engine_speed
	$(BIN)/python -m benchmarks.metrics_overhead
	$(BIN)/python -m benchmarks.simulate_follow
	$(BIN)/python -m benchmarks.stack_startup
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.faust_reporting
	$(BIN)/python -m benchmarks.backlog_join
	$(BIN)/python -m benchmarks.retrain_rows
	$(BIN)/python -m benchmarks.many_models
	$(BIN)/python -m benchmarks.feature_cost
	$(BIN)/python -m benchmarks.chunk_cost
	$(BIN)/python -m benchmarks.checkpoint_cost

clean:
	-$(BIN)/driftradar stack down
	rm -rf $(VENV) .driftradar .mypy_cache .ruff_cache .pytest_cache
