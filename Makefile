# phoneprov: `make run` serves a demo site; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SITE ?= ./site
# Debian tools the tests drive as real peers (curl is the phone; lftp/tftp-hpa/atftp (windowsize) for
# FTP/TFTP; dnsmasq/dhcpd/kea for DHCP; ab, nginx, tftpd-hpa and vsftpd for benchmarks;
# jq for the JSON examples in docs/troubleshooting.md; graphviz draws docs/images/*.svg;
# logrotate runs the service's rotation rule, docs/service.md; chromium is the browser
# tests/integration/test_console.py drives through Playwright, never a downloaded one).
APT_TOOLS := curl openssl lftp tftp-hpa atftp tftpd-hpa dnsmasq-base isc-dhcp-server \
	kea-dhcp4-server busybox apache2-utils nginx-light vsftpd iproute2 tcpdump \
	postgresql jq graphviz fail2ban logrotate chromium haproxy

.PHONY: install run test lint typecheck unit tools clients bench clean docs

$(BIN)/phoneprov: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(BIN)/phoneprov

install: $(BIN)/phoneprov

# make run [BIND=addr] [HTTP_PORT=n] [HTTPS_PORT=n] [FTP_PORT=n] [TFTP_PORT=n]: the demo site,
# on this machine only (127.0.0.1) unless BIND says otherwise; ports left empty are the
# site's (8080, 8443, 2121, 6969). ADMIN_PORT: the admin API's port (the site's: 8444).
BIND ?= 127.0.0.1
HTTP_PORT ?=
HTTPS_PORT ?=
FTP_PORT ?=
TFTP_PORT ?=
ADMIN_PORT ?=
SERVE_FLAGS = --bind $(BIND) $(if $(HTTP_PORT),--http-port $(HTTP_PORT)) \
	$(if $(HTTPS_PORT),--https-port $(HTTPS_PORT)) $(if $(FTP_PORT),--ftp-port $(FTP_PORT)) \
	$(if $(TFTP_PORT),--tftp-port $(TFTP_PORT)) $(if $(ADMIN_PORT),--admin-port $(ADMIN_PORT))

run: install clients
	@test -f $(SITE)/phoneprov.toml || $(BIN)/phoneprov init --site $(SITE) --demo \
		--fqdn localhost --fqdn 127.0.0.1
	@echo "Stop it with Ctrl-C. A port taken? make run FTP_PORT=2122 (HTTP_PORT, HTTPS_PORT, TFTP_PORT, ADMIN_PORT too)."
	@test ! -f $(SITE)/demo/admin-password || echo "Web console: the console URL below (the site's own CA signed its certificate: $(SITE)/pki/ca.pem); log in as demo, password $$(cat $(SITE)/demo/admin-password)"
	$(BIN)/phoneprov serve --site $(SITE) $(SERVE_FLAGS)

# The clients the README's examples use: curl (the phone), lftp, tftp-hpa.
APT_CLIENTS := curl lftp tftp-hpa

# Install what is missing without starting or enabling services: the tests need the programs
# only (fail2ban-regex, not fail2ban's daemon; vsftpd, Kea, ... run on loopback as the tests
# start them). scripts/disable-services.sh removes the boot links the install made.
tools:
	@scripts/install-debian-packages.sh $(APT_TOOLS)

clients:
	@scripts/install-debian-packages.sh $(APT_CLIENTS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit

# Branch coverage of src/phoneprov, in-process and in the CLI and server subprocesses
# ([tool.coverage.run] in pyproject.toml): the table and its TOTAL line print last.
# compileall: the suite starts `phoneprov` hundreds of times; where PYTHONDONTWRITEBYTECODE
# is set (this machine sets it) every start would compile its modules again (about 0.5 s).
test: install tools lint docs
	$(BIN)/python -m compileall -q src/phoneprov
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
