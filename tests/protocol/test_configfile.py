from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from protocol.configfile import ConfigError, layer_paths, load, nearest, parse_toml


class Mqtt(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 1883


class Camera(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    address: str


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    site: str
    mqtt: Mqtt = Mqtt()
    cameras: tuple[Camera, ...] = ()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_layers_merge_in_order_and_cli_wins(tmp_path: Path) -> None:
    main = write(tmp_path, "agent.toml", 'site = "a"\n[mqtt]\nport = 1\n')
    write(tmp_path, "agent.d/10-port.toml", "[mqtt]\nport = 2\n")
    write(tmp_path, "agent.d/20-host.toml", '[mqtt]\nhost = "127.0.0.2"\n')
    paths = layer_paths(main)
    assert [p.name for p in paths] == ["agent.toml", "10-port.toml", "20-host.toml"]
    cfg = load(Config, paths)
    assert cfg.mqtt == Mqtt(host="127.0.0.2", port=2)
    assert load(Config, paths, {"mqtt.port": 3}).mqtt.port == 3


def test_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    main = write(tmp_path, "agent.toml", 'site = "a"\n\n[mqtt]\nport = "high"\n')
    with pytest.raises(ConfigError, match=r"agent\.toml:4: mqtt\.port: Expected `int`, got `str`"):
        load(Config, [main])


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    main = write(tmp_path, "agent.toml", 'site = "a"\n[mqtt]\nprot = 1\n')
    with pytest.raises(ConfigError, match=r"agent\.toml:3: mqtt\.prot: unknown key"):
        load(Config, [main])


def test_error_in_array_of_tables(tmp_path: Path) -> None:
    text = 'site = "a"\n[[cameras]]\nid = "c1"\naddress = "x"\n[[cameras]]\nid = 5\naddress = "y"\n'
    main = write(tmp_path, "agent.toml", text)
    with pytest.raises(ConfigError, match=r"cameras\.1\.id: Expected `str`, got `int`"):
        load(Config, [main])


def test_missing_required_key(tmp_path: Path) -> None:
    main = write(tmp_path, "agent.toml", "[mqtt]\nport = 1\n")
    with pytest.raises(ConfigError, match="missing required field `site`"):
        load(Config, [main])


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    main = write(tmp_path, "agent.toml", "site = \n")
    with pytest.raises(ConfigError, match=r"agent\.toml: .*line 1"):
        load(Config, [main])


def test_each_entry_of_an_array_of_tables_has_its_own_lines() -> None:
    text = (
        '[[camera]]\nid = "a"\n[[camera.users]]\nname = "x"\n'
        '[[camera]]\nid = "b"\ntls = {versions = ["TLSv1"]}\n[camera.faults]\nhang = true\n'
    )
    _, lines = parse_toml(text, "LAB.toml")
    assert [nearest(key, lines) for key in ("camera.0.id", "camera.0.users.0.name")] == [2, 4]
    assert [nearest(key, lines) for key in ("camera.1.id", "camera.1.tls.versions")] == [6, 7]
    assert (nearest("camera.1.faults.hang", lines), nearest("camera.1.missing", lines)) == (9, 5)
    assert nearest("camera", lines) == 1
    with pytest.raises(ConfigError, match=r"^LAB\.toml: "):
        parse_toml("[[camera]\n", "LAB.toml")
