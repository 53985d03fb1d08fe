from __future__ import annotations

import protocol


def test_protocol_all_is_exact() -> None:
    public = {name for name in dir(protocol) if not name.startswith("_")}
    submodules = {
        "cliparse", "commands", "configfile", "envelope", "errors", "keys", "messages",
        "remediation", "rules", "survey", "text", "topics",
    }  # fmt: skip
    assert set(protocol.__all__) == public - submodules
    assert protocol.__all__ == sorted(protocol.__all__, key=lambda n: (not n.isupper(), n))
