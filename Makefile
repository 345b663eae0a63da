# Two commands on a fresh machine with Python 3.11, make and apt-get:
#   make run   -> creates .venv, installs, starts the app on the embedded demo cohort
#   make test  -> installs what tests need (incl. Debian's chromium) and runs the whole suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
# Without sign-in the app is the data owner's only when bound to localhost (README, Deployment).
ADDRESS ?= localhost
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# Keep freed buffers mapped between releases: OpenDP's per-call buffers (~8 MB at 10^6 rows)
# otherwise go back to the OS each call and page-fault in again (measured: mean 38-68 -> 19-23 ms).
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456

.PHONY: run test bench install system-deps clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,real,bench]"
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi dejavu \
	    || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then \
	  echo "installing Debian chromium + fonts (browser tests), postgresql (engine tests start their own server) and a Java runtime (Spark)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fontconfig postgresql default-jre-headless; \
	fi

run: install
	$(PY) -m streamlit run dashboard/app.py --server.address $(ADDRESS) --server.port $(PORT) --browser.gatherUsageStats false

test: install system-deps
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)
	$(PY) -m benchmarks.cohort_load $(filter --big,$(BENCH_ARGS))
	$(PY) -m benchmarks.report_budget
	$(PY) -m benchmarks.clinician_session
	$(PY) -m benchmarks.simulate_speed
	$(PY) -m benchmarks.engines --postgres --spark $(filter --big,$(BENCH_ARGS))

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
