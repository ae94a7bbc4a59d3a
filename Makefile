# The two commands a new teammate needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: run test install install-dev migrate lint typecheck system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt

.env:
	cp .env.example .env

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

## Install, configure, migrate, load the demo catalogue and serve on http://localhost:$(PORT)
run: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## Debian's packages the suite drives: Chromium (admin browser tests), nginx
## (the production topology) and clamd (virus scanning). Never a downloaded browser.
system-deps:
	@missing=; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -x /usr/sbin/clamd ] || missing="$$missing clamav-daemon"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian's$$missing for the test suite..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## Install the test requirements and run the whole suite (DATABASE_URL=postgres://... for PostgreSQL)
test: install-dev system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy with django-stubs: strict on the AI-Core client, the reply flow, every service module and prepared queries
typecheck: install-dev
	ENV_FILE=/dev/null DEBUG=True $(BIN)/mypy aicore chats/replies */services.py tutor_platform/prepared.py
