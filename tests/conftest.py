"""Shared fixtures: a demo site made by `init`, a running server, a factory-like PKI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pkitools import FactoryPki, factory_pki
from tests.serverkit import Server, make_site, start_server


@pytest.fixture(scope="session")
def factory() -> FactoryPki:
    """A Polycom-shaped chain (root -> policy -> issuing CA) for factory-like device certs."""
    return factory_pki()


@pytest.fixture(scope="session")
def lab_factory() -> FactoryPki:
    """A factory-shaped chain under other names, for servers that trust the real Polycom chain."""
    return factory_pki("Lab")


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo site made by `init` per session; tests get copies (key generation is slow)."""
    return make_site(tmp_path_factory.mktemp("template") / "site")


@pytest.fixture
def site(site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo site (CA, server certificates, boot directory, demo phone)."""
    target = tmp_path / "site"
    shutil.copytree(site_template, target, symlinks=True)
    return target


@pytest.fixture
def server(site: Path) -> Iterator[Server]:
    """`phoneprov serve` on the demo site, HTTP and HTTPS on free ports."""
    running = start_server(site)
    yield running
    running.stop()
