# The two commands: `make demo` and `make test`. Both create or reuse .venv (Python 3.11).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check venv release bundle bench bench-gpu bench-load clean

venv: $(STAMP)

# Two distributions: course-lib (the root pyproject, what students install) and the grader (autograder/pyproject.toml).
# setuptools notes every editable install with an "Editable installation." warning that asks for nothing: that one
# note is filtered by its text; any other warning of the build still shows.
$(STAMP): pyproject.toml autograder/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e '.[dev]' -e ./autograder
	touch $(STAMP)

demo: $(STAMP)
	$(PY) bench/demo.py --out demo_out

# Two workers: the tests that need the trained reference on one (it trains on one core), the rest on the other.
# Groups are handed out in collection order (tests/conftest.py puts the reference first and its late group last).
test: $(STAMP)
	$(PY) -m pytest -q --durations=15 -n 2 --dist loadgroup --no-loadscope-reorder

# The fast tier for developers between commits: no training, no notebook execution, no grading run.
check: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow"

release: $(STAMP)
	$(PY) -m autograder release

# What students receive (student_bundle/ and student_bundle.zip): release notebooks, course_lib wheel, README.
bundle: $(STAMP)
	$(PY) -m autograder bundle

bench: $(STAMP)
	$(PY) bench/synthetic_calibration.py
	$(PY) bench/model_throughput.py
	$(PY) bench/metric_throughput.py
	$(PY) bench/camvid_recipe.py
	$(PY) bench/grading_at_scale.py

# The FULL recipe and GPU grading on one GPU (at most about 10 minutes). No set-up step: it also runs on an offline
# GPU node that has only PyTorch, torchvision, pandas, matplotlib and tqdm (the .venv's Python when there is one).
bench-gpu:
	PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),$(PYTHON)) bench/gpu.py

# make demo from a fresh clone of HEAD, idle and with one core kept busy (about 15 minutes on 2 cores).
bench-load: $(STAMP)
	$(PY) bench/demo_under_load.py

clean:
	rm -rf demo_out .pytest_cache
