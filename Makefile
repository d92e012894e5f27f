# Named targets for developers and CI. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.DEFAULT_GOAL := help
.PHONY: help venv deps run stack test train-model crds dashboards dashboard-pictures kind-cluster minikube-cluster prerequisites dev deploy test-unit test-integration lint format bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Python virtualenv with the pinned dependencies

deps: venv ## build or download every test-bed component into .cache (idempotent)
	$(PY) -m fraud_testbed.install

test: deps lint ## everything: lint, unit tests, then tests against the real components
	$(PYTEST) tests

test-unit: venv ## fast tests that need no component (under a minute)
	$(PYTEST) tests/unit

test-integration: deps ## tests against the real API server, Kafka, Spark, Elasticsearch, Prometheus
	$(PYTEST) tests/integration

lint: venv ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

run: deps ## the main job: a FraudPipeline end to end on this machine, live view, report on exit (MANIFEST=..., DURATION=2m, RUN_ARGS=--with-prometheus)
	$(PY) -m fraud_local run $(or $(MANIFEST),examples/fraudpipeline.yaml) --duration $(or $(DURATION),2m) $(RUN_ARGS)

stack: deps ## the local stack of real components until Ctrl-C (DURATION=10m to stop by itself)
	$(PY) -m fraud_testbed.stack $(if $(DURATION),--duration $(DURATION))

bench: deps ## benchmarks: JSON in bench/results, a summary on stdout
	$(PY) bench/testbed.py
	$(PY) bench/simulator.py
	$(PY) bench/detection.py
	$(PY) bench/query_shapes.py
	$(PY) bench/cores.py
	$(PY) bench/spark_state.py
	$(PY) bench/state_scale.py
	$(PY) bench/redaction.py
	$(PY) bench/stages.py
	$(PY) bench/operator_scale.py
	$(PY) bench/figures.py

dashboards: venv ## regenerate grafana/dashboards/*.json from grafana/fraud_dashboards
	$(PY) -m fraud_dashboards

dashboard-pictures: deps ## redraw docs/images/*.png from the dashboards' own queries on a fed test bed (about 4 min)
	$(PY) -m fraud_dashboards.pictures --output docs/images

crds: venv ## regenerate the FraudPipeline CRD (crds/ and the chart) from operator/fraud_operator/schema.py
	$(PY) -m fraud_operator.schema

train-model: venv ## retrain the default model in models/default from simulated traffic
	$(PY) jobs/train_model.py --output models/default

# --- a development cluster (needs Docker, kind or minikube, skaffold, and the internet) ---
CLUSTER ?= fraudpipeline
HELM := .cache/bin/helm
KIND_VERSION := v0.33.0

kind-cluster: ## create a kind cluster named $(CLUSTER) (kind from the Go module proxy)
	GOTOOLCHAIN=local GOBIN=$(CURDIR)/.cache/bin go install sigs.k8s.io/kind@$(KIND_VERSION)
	.cache/bin/kind create cluster --name $(CLUSTER)

minikube-cluster: ## start minikube with room for Kafka, Spark and Elasticsearch
	minikube start --cpus 4 --memory 12g

prerequisites: venv ## install the pinned prerequisites (Strimzi, spark-operator, monitoring, ECK) and the namespace "fraud"
	$(PY) -m fraud_testbed.install helm
	$(HELM) dependency build charts/fraudpipeline-prerequisites
	$(HELM) upgrade --install prerequisites charts/fraudpipeline-prerequisites \
	  --namespace monitoring --create-namespace --wait --timeout 15m
	kubectl create namespace fraud --dry-run=client -o yaml | kubectl apply -f -
	kubectl -n fraud create secret generic fraud-tokenization \
	  --from-literal=hmac-key="$$(head -c 32 /dev/urandom | base64)" --dry-run=client -o yaml | kubectl apply -f -

dev: ## build the images, install the operator and a sample FraudPipeline, and follow (skaffold dev)
	skaffold dev --port-forward

deploy: ## the same, once (skaffold run)
	skaffold run --port-forward

lock: ## re-resolve the newest allowed versions into constraints.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo '# Pinned versions of every Python dependency: regenerate with `make lock`.'; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean: ## remove the virtualenv (keeps the .cache of built components)
	rm -rf $(VENV) .pytest_cache .ruff_cache
