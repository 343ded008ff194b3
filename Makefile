# The two commands: `make lab` (set up, then open the course) and `make test` (set up, then test).
VENV  := .venv
BIN   := $(VENV)/bin
STATE := .docklab
PORT  ?= 8888
# Test workers for the tests that may share the engine (tests/conftest.py keeps together what
# must not run side by side); the `serial` ones run after them, alone. WORKERS=0: one process.
# Three on two cores: most tests wait on an engine, a hub or a browser (two workers left the
# cores a third idle); a fourth saturated them and gained 40 s of 14 min (BENCHMARKS.md).
# JUNIT=path/prefix writes JUnit reports (prefix-shared.xml, prefix-serial.xml) for bench/.
WORKERS ?= 3
JUNIT   ?=

.PHONY: lab test test-engines setup engine venv images clean-course classroom classroom-down

setup: engine venv images

engine:
	@scripts/ensure-engine.sh
	@scripts/ensure-buildx.sh

# The Compose plugin link is relinked each time: another checkout's set-up (a clean clone for
# bench/) points it at its own venv, which may be gone by now.
venv: $(VENV)/.installed
	@$(BIN)/docklab setup compose-plugin >/dev/null

# Rebuilt only when the project's dependencies change: a warm `make lab` installs nothing.
$(VENV)/.installed: pyproject.toml scripts/setup-venv.sh
	@echo "docklab: setting up $(VENV) ..."
	@scripts/setup-venv.sh
	@touch $@

images: engine venv
	@$(BIN)/docklab images prepare

lab: setup
	@echo "docklab: opening the course; the URL to open follows (Ctrl-C stops JupyterLab)."
	@$(BIN)/jupyter lab --no-browser --allow-root --ip=127.0.0.1 --port=$(PORT) \
		--ServerApp.root_dir=$(CURDIR) notebooks/00-index.ipynb

test: setup
	@scripts/ensure-browser.sh
	@scripts/ensure-proxy.sh
	@$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup -m "not serial and not engines" \
		$(if $(JUNIT),--junitxml=$(JUNIT)-shared.xml); shared=$$?; \
	$(BIN)/python -m pytest -m serial $(if $(JUNIT),--junitxml=$(JUNIT)-serial.xml); \
	serial=$$?; exit $$(( shared || serial ))

# The engine matrix (tests/engines): the notebooks and labs on Engine 26 and 28 (overlay2 and the
# containerd image store), each a course engine started beside the host's. Left out of `make test`
# to keep it quick; .ci/run runs both. A worker per engine: their runs wait on the engines more
# than they use the cores (tests/engines/conftest.py).
ENGINE_WORKERS ?= 3
test-engines: setup
	@$(BIN)/python -m pytest -n $(ENGINE_WORKERS) --dist loadgroup -m engines \
		$(if $(JUNIT),--junitxml=$(JUNIT)-engines.xml)

# A class on this host: JupyterHub, each learner with JupyterLab and a private engine (README,
# "Classroom"). DOCKLAB_CLASSROOM_* set its port, limits and images.
classroom: setup
	@scripts/ensure-proxy.sh
	@$(BIN)/docklab classroom up

classroom-down: venv
	@$(BIN)/docklab classroom down

clean-course: venv
	@$(BIN)/docklab clean --yes
