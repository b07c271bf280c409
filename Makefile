# keyless.aws: every task a developer or CI needs. `make demo` and `make test` set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keyless-stamp
BUILD := .build
# The collections tree ansible.cfg points at: keyless/aws is this checkout, amazon/aws the
# copy carried by the pinned `ansible` package.
COLLECTIONS := $(BUILD)/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SANDBOX := PYTHONPATH=$(CURDIR)/tests $(BIN)/python -m sandbox run --
PYTEST_WORKERS ?= 2

.PHONY: help venv test demo demo-guard unit integration sanity lint changelog-lint docs-lint molecule test-faults docs dist test-matrix bench bench-aws clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv with the pinned dev requirements (no-op when current)

# (Byte-compiled at install, --no-compile would be a trap: where PYTHONDONTWRITEBYTECODE is set, as on
# the CI machines, nothing is cached later and every import compiles again; make test took 22m32s.)
$(STAMP): requirements-dev.txt requirements.txt scripts/link-collections.sh
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "keyless.aws needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	bash scripts/link-collections.sh $(VENV) $(COLLECTIONS)
	@touch $(STAMP)

test: venv ## the whole test suite: sanity, lint, unit, integration, docs, changelog, molecule
	bash scripts/test.sh

demo: venv ## run playbooks/provision.yml against the embedded sandbox
	$(SANDBOX) bash scripts/demo.sh

demo-guard: venv ## Keyless, continuously: the guard (ansible-rulebook, built on demand) puts drift right in the embedded sandbox
	$(BIN)/python scripts/demo_guard.py

unit: venv ## unit tests of plugins/ (pytest, no AWS), then functional ones (module_utils and the sandbox, in process)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests/unit tests/functional

integration: venv ## integration playbooks against the sandbox, and the docs' consistency with the code
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests/docs tests/integration

sanity: venv ## ansible-test sanity --venv
	bash scripts/sanity.sh

lint: venv ## ansible-lint --offline --profile production
	bash scripts/lint.sh

changelog-lint: venv ## antsibull-changelog lint
	$(BIN)/antsibull-changelog lint

docs-lint: venv ## antsibull-docs lint-collection-docs --plugin-docs
	bash scripts/docs-lint.sh

molecule: venv ## molecule scenarios of the role against the sandbox (also part of make test)
	$(BIN)/python -m pytest tests/integration/test_molecule.py

test-faults: venv ## the slow reliability tests only: faults, races, interruption, bad input, secrets (also in make test)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m slow tests/integration

bench: venv ## keyless.aws vs amazon.aws at N=10/100/500 on the sandbox at moto speed (CPU cost): table, bench/results/
	bash scripts/bench.sh $(BENCH_ARGS)

bench-aws: venv ## the same under EC2's rate limits (AWS-like sandbox), N=100/500/1000 vs the token limit (~40 min), then the forks audit (~8 min), then the guard's call-to-fixed seconds (~4 min)
	bash scripts/bench.sh --aws $(BENCH_ARGS)
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(BIN)/python bench/forks.py $(FORKS_ARGS)
	$(BIN)/python bench/guard.py $(GUARD_ARGS)

docs: venv ## build the HTML docs site in .build/docs/html (antsibull-docs + Sphinx, offline)
	bash scripts/docs.sh

dist: venv ## build the Galaxy tarball into .build/dist (keyless-aws-ee.yml takes it from there)
	rm -rf $(BUILD)/dist
	$(BIN)/ansible-galaxy collection build --output-path $(BUILD)/dist .

test-matrix: venv ## sanity, units and integration smoke on ansible-core 2.17, 2.19, 2.21 (.build/matrix/)
	bash scripts/test-matrix.sh

clean: ## remove build output (keeps .venv)
	rm -rf $(BUILD) tests/output .pytest_cache

.PHONY: rulebook-venv
rulebook-venv: ## the Event-Driven Ansible runtime, on demand: .build/rulebook-venv (ansible-rulebook, Python >= 3.12, a JDK >= 17, amazon.aws 11.4)
	bash scripts/rulebook-venv.sh
