# Gunship: `make demo` deploys the example app into a local container; `make test` runs
# every test. Both set up what they need on a fresh machine first.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_HOME := $(CURDIR)/.ansible
export ANSIBLE_FORCE_COLOR ?= 0
PYTHON ?= python3
DISTROS := bookworm trixie

.PHONY: help host venv images demo demo-down test unit lint molecule bench bench-tools bench-release bench-slow bench-cluster bench-speed clean

help:
	@echo "make demo      set up, start the sandbox container, deploy the example app"
	@echo "make test      set up, then unit tests, lint and every Molecule scenario"
	@echo "make unit | lint | molecule    one part of the tests"
	@echo "make demo-down remove the sandbox container"
	@echo "make bench     the whole benchmark, then docs/benchmarks.md with plots (QUICK=1: minutes)"
	@echo "make bench-release   fab rollback and switch timings on the release scenario's container"
	@echo "make bench-slow      slow clients against Gunicorn directly and through Nginx"
	@echo "make bench-cluster   deploy time for 1, 2, 4 and 8 app hosts behind a load balancer"
	@echo "make bench-speed BASELINE=REV   one host's deploy time, this tree beside revision REV"

host:
	scripts/host-setup.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt examples/flaskapp/pyproject.toml examples/asgiapp/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -e examples/flaskapp -e examples/asgiapp
	touch $@

images: host
	for distro in $(DISTROS); do scripts/build-test-image.sh $$distro; done

demo: host venv
	scripts/demo.sh

demo-down:
	podman rm -f gunship-demo

test: host venv images unit lint molecule
	scripts/test-summary.py .reports

# pytest exits 5 when it collects nothing: a suite that ran no test has failed.
unit: venv
	mkdir -p .reports
	pytest -q -p no:cacheprovider --junitxml=.reports/unit.xml tests examples/flaskapp/tests examples/asgiapp/tests; \
	  status=$$?; [ $$status -ne 5 ] || echo "unit: no tests were collected" >&2; \
	  [ $$status -eq 0 ]

lint: venv
	ruff check .
	ruff format --check .
	yamllint --strict .
	ansible-lint

# Two lanes of scenarios side by side; every scenario in molecule/ must be in one of them.
LANES := "default uwsgi asgi collection acme" "release supervisor uwsgi-supervisor cluster"
molecule: venv images
	@for s in molecule/*/molecule.yml; do s=$${s#molecule/}; s=$${s%/molecule.yml}; \
	  [[ " $(subst ",,$(LANES)) " == *" $$s "* ]] || { echo "molecule/$$s is in no lane of LANES" >&2; exit 1; }; done
	scripts/molecule-lanes.sh $(LANES)

# Not a test: figures for a person to read (bench/results/, docs/benchmarks.md), nothing
# asserted. `make bench QUICK=1` runs short measurements with few repetitions in a few minutes.
bench: bench-tools images
	python bench/stack.py $(if $(QUICK),--quick)
	python bench/release_cycle.py --sandbox $(if $(QUICK),--rounds 2)
	python bench/cluster.py $(if $(QUICK),--hosts 1 2 --rounds 1)
	python bench/report.py

bench-tools: host venv
	command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt

bench-release: host venv images
	python bench/release_cycle.py --sandbox

bench-cluster: bench-tools images
	python bench/cluster.py
	python bench/report.py

# One host's no-op and new-release deploy, this tree beside BASELINE (a git revision).
BASELINE ?= HEAD~1
bench-speed: bench-tools images
	python bench/deploy_speed.py --baseline $(BASELINE)
	python bench/report.py

bench-slow: bench-tools images
	python bench/stack.py --only slow-clients --out bench/results/slow_clients.json

clean:
	rm -rf $(VENV) .ansible .reports
