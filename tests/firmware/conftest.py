from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lab.firmware import make_image
from protocol import generate_private_key
from server.api import create_app
from server.cli import main
from server.config import DatabaseConfig, ServerConfig
from server.storage import Repository
from tests.server.conftest import collector, db_url, publisher, repo, serve

__all__ = ["collector", "db_url", "publisher", "repo"]  # the collector fixtures, shared


@dataclass
class Site:
    """A collector's state directory, database and HTTP server, driven through the CLI."""

    state: Path
    db_url: str
    keys: Path
    http: httpx.Client
    repo: Repository

    def cli(self, *argv: str) -> int:
        return main(
            [
                "--config",
                str(self.state / "none.toml"),
                "--set",
                f'state_dir="{self.state}"',
                "--set",
                f'database.url="{self.db_url}"',
                *argv,
            ]
        )

    def keygen(self, name: str) -> Path:
        path = self.keys / f"{name}.key"
        assert main(["firmware", "keygen", str(path)]) == 0
        return path

    def sign_and_import(self, *keys: Path) -> None:
        bundle = self.keys / "next.bundle"
        assert self.cli("firmware", "export-bundle", str(bundle)) == 0
        for key in keys:
            assert main(["firmware", "sign", "--key", str(key), str(bundle)]) == 0
        assert self.cli("firmware", "import-signed", str(bundle)) == 0

    def upload(self, version: str, model: str = "DS-2CD2143G2-I", **extra: str) -> Path:
        image = self.keys.parent / f"fw-{version}.bin"
        image.write_bytes(make_image("hikvision", version, dt.date(2024, 5, 1), 8192, model=model))
        args = ["--vendor", "hikvision", "--model", model, "--version", version]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}", v]
        assert self.cli("firmware", "upload", str(image), *args) == 0
        return image

    @property
    def base(self) -> str:
        return str(self.http.base_url).rstrip("/")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    state = tmp_path / "state"
    keys = tmp_path / "offline"
    state.mkdir()
    keys.mkdir()
    url = f"sqlite:///{state / 'collector.db'}"
    store = Repository.open(url)
    store.migrate()
    config = ServerConfig(state_dir=str(state), database=DatabaseConfig(url=url))
    app = create_app(config, store, command_key=generate_private_key())
    try:
        with serve(app) as http:
            yield Site(state, url, keys, http, store)
    finally:
        store.close()


@pytest.fixture
def signed_site(site: Site) -> tuple[Site, dict[str, Path]]:
    """Set up with two of three root keys and one targets key, one image published."""
    keys = {n: site.keygen(n) for n in ("root-1", "root-2", "root-3", "targets-1")}
    assert (
        site.cli(
            "firmware", "init",
            "--root-key", f"{keys['root-1']}.pub",
            "--root-key", f"{keys['root-2']}.pub",
            "--root-key", f"{keys['root-3']}.pub",
            "--root-threshold", "2",
            "--targets-key", f"{keys['targets-1']}.pub",
        )
        == 0
    )  # fmt: skip
    site.upload("V5.7.3")
    site.sign_and_import(keys["root-1"], keys["root-2"], keys["targets-1"])
    return site, keys
