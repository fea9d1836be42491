# phoneprov: `make run` serves a demo site; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SITE ?= ./site
# Debian tools the tests drive as real peers (curl is the phone; lftp/tftp-hpa/atftp (windowsize) for
# FTP/TFTP; dnsmasq/dhcpd/kea for DHCP; ab, nginx, tftpd-hpa and vsftpd for benchmarks;
# jq for the JSON examples in docs/troubleshooting.md; graphviz draws docs/images/*.svg).
APT_TOOLS := curl openssl lftp tftp-hpa atftp tftpd-hpa dnsmasq-base isc-dhcp-server \
	kea-dhcp4-server busybox apache2-utils nginx-light vsftpd iproute2 tcpdump \
	postgresql jq graphviz

.PHONY: install run test lint typecheck unit tools bench clean docs

$(BIN)/phoneprov: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(BIN)/phoneprov

install: $(BIN)/phoneprov

run: install
	@test -f $(SITE)/phoneprov.toml || $(BIN)/phoneprov init --site $(SITE) --demo \
		--fqdn localhost --fqdn 127.0.0.1
	$(BIN)/phoneprov serve --site $(SITE)

# Installs missing Debian tools without starting their services (policy-rc.d 101).
tools:
	@missing=""; for p in $(APT_TOOLS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "not root: cannot install$$missing; tests needing them will be skipped"; exit 0; fi; \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
		apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; rc=$$?; \
		rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit

# Branch coverage of src/phoneprov, in-process and in the CLI and server subprocesses
# ([tool.coverage.run] in pyproject.toml): the table and its TOTAL line print last.
test: install tools lint docs
	$(BIN)/pytest -q -p no:cacheprovider --cov=phoneprov --cov-branch \
		--cov-report=term:skip-covered tests

# Pictures in docs/ are drawn from their text sources (Graphviz), never edited by hand.
DIAGRAMS := $(patsubst %.dot,%.svg,$(wildcard docs/images/*.dot))

docs: tools $(DIAGRAMS)

docs/images/%.svg: docs/images/%.dot
	dot -Tsvg $< -o $@

bench: install tools
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
