from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import generate_private_key
from server.api import create_app
from server.config import DatabaseConfig, ServerConfig
from server.storage import Repository
from tests.server.conftest import serve
from tests.support.firmware import published_repo


class Collector:
    def __init__(self, state: Path, repo: Repository, base_url: str) -> None:
        self.state, self.repo, self.base_url = state, repo, base_url


@pytest.fixture
def collector_tuf(tmp_path: Path) -> Iterator[Collector]:
    """The collector's HTTP app on loopback serving a TUF repository with V5.7.3 published."""
    state = tmp_path / "collector"
    state.mkdir()
    url = f"sqlite:///{state / 'collector.db'}"
    store = Repository.open(url)
    store.migrate()
    published_repo(state, store, "V5.7.3")
    config = ServerConfig(state_dir=str(state), database=DatabaseConfig(url=url))
    app = create_app(config, store, command_key=generate_private_key())
    try:
        with serve(app) as http:
            yield Collector(state, store, str(http.base_url).rstrip("/"))
    finally:
        store.close()
