# mailseal — two front doors: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

# Debian packages the tests drive as real peers (see docs/testing.md).
DEBS := postfix opendkim opendkim-tools miltertest libmail-dkim-perl libnet-dns-perl faketime

.PHONY: run test lint typecheck unit debs clean

$(STAMP): pyproject.toml setup.py src/mailseal/dkim/_canon.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) packaging/quickstart.py

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench packaging

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: debs $(STAMP) lint typecheck
	MAILSEAL_REQUIRE_PEERS=1 $(VENV)/bin/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
