# The course's commands, named after the steps of the nbgrader pipeline.
# Every target that needs Python first makes sure .venv is installed and up to date.
# The grader's own steps and tools are subcommands of one command line, .venv/bin/convgrader
# (`convgrader --help`; convgrader/cli.py), which `make install` installs.

# The venv's python is a link to this interpreter, so every user of the course must be able
# to run it: Debian's /usr/bin/python3.11 is, a python3.11 under root's home (pyenv, mode
# 700) is not. PYTHON=... overrides: Python 3.11, 3.12 and 3.13 all work.
PYTHON ?= $(or $(wildcard /usr/bin/python3.11),python3.11)
VENV := .venv
BIN := $(abspath $(VENV))/bin
# nbgrader runs alembic from PATH when it creates a gradebook: the venv's bin/ goes first.
export PATH := $(BIN):$(PATH)
# Keep matplotlib's and Jupyter's output stable and free of warnings about the desktop.
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

SAMPLE_CLASS := grader_tests/sample_class

.PHONY: help install lab outputs release collect-sample autograde feedback export table \
        report grade benchmark demo test check postgresql bubblewrap chromium slurm clean \
        exchange demo-exchange kit test-kit ci kernel-account hub hub-proxy static

help:
	@echo "make demo      the instructor pipeline on the bundled sample class (batch grader), then the grade table"
	@echo "make test      all tests (nbval, release in sync, autograde end to end)"
	@echo "make check     make static, then the quick tier: unit tests, contract, release in sync, nbval (no grading)"
	@echo "make static    mypy and the import contracts (import-linter)"
	@echo "make install   create .venv with the pinned dependencies (the other targets do it too)"
	@echo "make lab       JupyterLab on the course, the instructor's (formgrader); students get make kit"
	@echo "make outputs   re-run source/ notebooks to refresh their stored outputs"
	@echo "make release   regenerate release/ from source/ (nbgrader generate_assignment)"
	@echo "make collect-sample   put the sample class's submissions in submitted/"
	@echo "make autograde | feedback | export | table   the grading steps, on submitted/"
	@echo "make report    reports/: score distribution and failure rate per test cell (PNG, CSV)"
	@echo "make grade     autograde all submissions with WORKERS workers and warm kernels (FORCE=1 regrades)"
	@echo "make benchmark stock nbgrader vs the batch grader on STUDENTS students -> bench/"
	@echo "make exchange  (administrator, as root, once) the exchange folder EXCHANGE and students' nbgrader config"
	@echo "make demo-exchange  (as root) release, fetch, submit, collect, grade, feedback with three student accounts"
	@echo "make hub       (administrator, as root) JupyterHub for the course on 127.0.0.1:HUB_PORT, in the foreground"
	@echo "make kit       the student kit -> dist/conv-basics-kit/ and .zip (notebooks, checks, pins, README)"
	@echo "make test-kit  install the kit in fresh venvs (KIT_PYTHONS) and run every notebook with the notes' answers"
	@echo "make clean     remove submissions, grades, feedback and the gradebook"

install: $(VENV)/.installed kernel-account

$(VENV)/.installed: requirements.txt requirements-student.txt requirements-d2l.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-d2l.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/convgrader kernelspec
	# JupyterLab's question about Jupyter's news, over every notebook: off (the kit's too).
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements
	touch $@

lab: install
	$(BIN)/jupyter lab

# Stored outputs are what nbval compares: refresh them after editing a source notebook.
outputs: install
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.record_timing=False source/*/*.ipynb

release: install
	$(BIN)/nbgrader generate_assignment "*" --force

collect-sample: install
	rm -rf submitted
	$(BIN)/convgrader sample-class build $(SAMPLE_CLASS) release submitted
	$(BIN)/nbgrader db student import $(SAMPLE_CLASS)/roster.csv

# nbgrader goes on past a submission it cannot grade and exits non-zero at the end; one
# process for every assignment (a glob) starts the grading sandbox once.
autograde: install bubblewrap
	$(BIN)/nbgrader autograde "*" --force

# Likewise: a student whose feedback fails does not stop the others' feedback.
feedback: install
	$(BIN)/nbgrader generate_feedback "*" --force

export: install
	$(BIN)/nbgrader export --to grades.csv

table: install
	$(BIN)/convgrader grade-table grades.csv

WORKERS ?= $(shell nproc)
grade: install bubblewrap
	$(BIN)/convgrader grade --workers $(WORKERS) $(if $(FORCE),--force)

STUDENTS ?= 10
benchmark: install bubblewrap
	$(BIN)/convgrader benchmark --students $(STUDENTS) --workers $(WORKERS) --out bench

report: install
	$(BIN)/convgrader report --out reports

# The whole instructor pipeline on the sample class, from a clean slate, graded by the
# course's batch grader (`make autograde` is stock nbgrader's, one notebook at a time: the
# tests show both give the same grades). The sample class's looping attacks would each wait
# out the 60 s cell limit: the demo's is 10 s (no honest cell takes 1 s), as the tests' 5 s.
demo: export CONVCOURSE_CELL_TIMEOUT ?= 10
demo: export CONVCOURSE_INTERRUPT_GRACE ?= 5
demo: clean release collect-sample grade feedback export table report
	@echo "Autograded notebooks: autograded/  Feedback: feedback/  Grades: grades.csv"
	@echo "Instructor report: reports/report.png, reports/test_cells.csv, reports/scores.csv"

# Debian packages the tests and grading need. Present: nothing to do (no apt call). Missing:
# root (CI) installs them with apt and, should apt fail, goes on with a warning as before;
# anyone else stops with the one line to hand an administrator, not apt's permission errors.
# $(call apt_install,WHAT,PACKAGES,FAILED) is the shell command for the missing case.
apt_install = if [ "$$(id -u)" != 0 ]; then \
	  echo "$(1) is not installed: ask an administrator to run 'apt-get install $(2)'." >&2; \
	  exit 1; fi; \
	apt-get update -qq && apt-get install -y -qq $(2) || \
	  echo "$(1) is not installed and cannot be installed here: $(3)."

# Grading runs student code in a bubblewrap sandbox (convgrader/kernels/sandbox.py).
bubblewrap: kernel-account
	@command -v bwrap >/dev/null || { \
	  $(call apt_install,bubblewrap,bubblewrap,grading will refuse to run); }

# A grader run as root runs the sandbox, and so student code, as this unprivileged system
# account, never as root (convgrader/kernels/sandbox.py: KERNEL_ACCOUNT). Made once, by root;
# an ordinary user's sandbox runs as that user, and needs none.
KERNEL_ACCOUNT := convcourse-kernel
kernel-account:
	@if [ "$$(id -u)" = 0 ] && ! id -u $(KERNEL_ACCOUNT) >/dev/null 2>&1; then \
	  useradd --system --user-group --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin $(KERNEL_ACCOUNT); fi

# The gradebook tests start a throwaway PostgreSQL server (grader_tests/postgres.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  $(call apt_install,PostgreSQL,postgresql,its tests will be skipped); }

# The job array's test starts a single-node Slurm cluster (grader_tests/slurm_cluster.py).
slurm:
	@{ command -v sbatch && command -v munged && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ]; } >/dev/null 2>&1 || { \
	  $(call apt_install,Slurm,slurmctld slurmd slurm-client munge,its test will be skipped); }

# The browser tests (grader_tests/test_browser.py, test_exchange.py) drive headless Chromium
# through its driver; a CJK font shows the notebooks' Chinese terms in their screenshots.
chromium:
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list :lang=zh | grep -q .; } || { \
	  $(call apt_install,Chromium,chromium chromium-driver fonts-noto-cjk,the browser tests will be skipped); }

# Test modules run on TEST_WORKERS pytest-xdist processes, a whole module (or notebook, whose
# nbval cells run in order) per process: 10 minutes instead of 15 on two cores. TEST_WORKERS=0
# runs them in this process, one after the other.
TEST_WORKERS ?= 2
test: install postgresql bubblewrap chromium slurm hub-proxy
	$(BIN)/python -m pytest --nbval --nbval-current-env -m "not kit" -n $(TEST_WORKERS) \
	  --dist loadfile source grader_tests

# The student kit as a student installs it: a fresh venv per Python of KIT_PYTHONS (found on
# PATH, as /usr/bin/pythonX.Y or under pyenv), pip install from the registry (pip's cache
# makes the second time quick), every release notebook run with the notes' answers, Validate.
KIT_PYTHONS ?= 3.11 3.13
test-kit: install
	CONVCOURSE_KIT_PYTHONS="$(KIT_PYTHONS)" $(BIN)/python -m pytest -m kit grader_tests/test_kit.py

# What CI runs (.ci/run): every test, then the student kit on two Pythons.
ci: static test test-kit

kit: install
	$(BIN)/convgrader kit build

# The edit-run loop (under 2 minutes): the type checker (mypy, [tool.mypy] in pyproject.toml),
# unit tests, the notebooks' contract, release/ in sync and nbval, without grading.
# The type hints (mypy) and the packages' layering (import-linter), both set in pyproject.toml.
static: install
	$(BIN)/mypy
	$(BIN)/lint-imports

check: static
	$(BIN)/python -m pytest --nbval --nbval-current-env -m "not grading and not kit" source grader_tests

# nbgrader's exchange on this machine (convgrader/exchange.py). An administrator runs
# `sudo make exchange INSTRUCTOR=<user>` once: it creates EXCHANGE (mode 1777), the course's
# folder in it owned by INSTRUCTOR (optional: else the first release makes it, and a student
# could take the name first), and writes STUDENT_CONFIG_DIR/nbgrader_config.py, where every
# user's nbgrader and JupyterLab's Assignment List find the exchange and the course id. At run time CONVCOURSE_EXCHANGE
# overrides the folder (nbgrader_config.py reads it too). Neither target installs the venv:
# run as root, that would leave root's files in it.
EXCHANGE ?= $(or $(CONVCOURSE_EXCHANGE),/srv/nbgrader/exchange)
STUDENT_CONFIG_DIR ?= /etc/jupyter
venv_needed = test -x $(BIN)/python || { echo "$(VENV) is missing: run 'make install' (as the instructor) first." >&2; exit 1; }

exchange:
	@$(venv_needed)
	$(BIN)/python -m convgrader.exchange setup --root $(EXCHANGE) --config-dir $(STUDENT_CONFIG_DIR) \
	    $(if $(INSTRUCTOR),--instructor $(INSTRUCTOR))

# The whole exchange flow with three student accounts it creates (as root), each command run
# by its own user, in a temporary course and exchange (grader_tests/exchange_flow.py).
demo-exchange:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo-exchange creates three student accounts and runs nbgrader as each of them: ask an administrator to run 'sudo make demo-exchange' in $(CURDIR)." >&2; exit 1; fi
	@$(venv_needed)
	@$(MAKE) --no-print-directory bubblewrap
	$(BIN)/python -u grader_tests/exchange_flow.py

clean:
	rm -rf submitted feedback reports grades.csv gradebook.db grading_failures
	find autograded -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

# The course on a JupyterHub of its own (convgrader/hub.py, deploy/hub/jupyterhub_config.py):
#   sudo make hub INSTRUCTORS="ada" GRADERS="tom tia" HUB_STUDENTS_GROUP=conv-students
# runs JupyterHub in the foreground on 127.0.0.1:HUB_PORT (README: "Run the course on
# JupyterHub", and how to run it under systemd). Users log in with their Linux accounts (PAM,
# so as root); the formgrader runs as GRADER_ACCOUNT in its own copy of the course; the hub's
# database and cookie secret go to HUB_STATE (mode 700). Like `make exchange`, it does not
# install the venv (run `make install` as the instructor first: it installs jupyterhub).
HUB_PORT ?= 8000
HUB_STATE ?= /srv/convcourse-hub
GRADER_ACCOUNT ?= convcourse-grader
INSTRUCTORS ?= $(CONVCOURSE_HUB_INSTRUCTORS)
GRADERS ?= $(CONVCOURSE_HUB_GRADERS)
HUB_STUDENTS ?= $(CONVCOURSE_HUB_STUDENTS)
HUB_STUDENTS_GROUP ?= $(CONVCOURSE_HUB_STUDENTS_GROUP)
HUB_ADMINS ?= $(CONVCOURSE_HUB_ADMINS)
hub_env = CONVCOURSE_HUB_PORT="$(HUB_PORT)" CONVCOURSE_HUB_STATE="$(HUB_STATE)" \
	CONVCOURSE_HUB_GRADER="$(GRADER_ACCOUNT)" CONVCOURSE_HUB_INSTRUCTORS="$(INSTRUCTORS)" \
	CONVCOURSE_HUB_GRADERS="$(GRADERS)" CONVCOURSE_HUB_STUDENTS="$(HUB_STUDENTS)" \
	CONVCOURSE_HUB_STUDENTS_GROUP="$(HUB_STUDENTS_GROUP)" CONVCOURSE_HUB_ADMINS="$(HUB_ADMINS)" \
	CONVCOURSE_EXCHANGE="$(EXCHANGE)" CONVCOURSE_HUB_EXCHANGE_CONFIG="$(STUDENT_CONFIG_DIR)" \
	$(if $(HUB_COURSE),CONVCOURSE_HUB_COURSE="$(HUB_COURSE)")

hub: hub-proxy bubblewrap
	@$(venv_needed)
	@test -x $(BIN)/jupyterhub || { echo "$(BIN)/jupyterhub is missing: run 'make install' (as the instructor) first." >&2; exit 1; }
	$(hub_env) $(BIN)/python -m convgrader.hub run

# JupyterHub's proxy, configurable-http-proxy from npm, pinned by deploy/hub/package-lock.json,
# installed in deploy/hub/node_modules (not a downloaded binary); again when the lock changes.
HUB_PROXY_STAMP := deploy/hub/node_modules/.package-lock.json
hub-proxy: $(HUB_PROXY_STAMP)

$(HUB_PROXY_STAMP): deploy/hub/package.json deploy/hub/package-lock.json
	@command -v npm >/dev/null || { \
	  $(call apt_install,npm,nodejs npm,the hub and its browser test cannot start); }
	npm ci --prefix deploy/hub --omit=dev --no-audit --no-fund
	touch $@
