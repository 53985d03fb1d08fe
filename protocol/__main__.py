"""``python -m protocol``: regenerate the shipped JSON Schemas from the message types (a
developer's command; the only place in ``protocol`` that writes a file)."""

import json
from pathlib import Path

from protocol.messages import MESSAGE_TYPES, json_schema

for kind in MESSAGE_TYPES:
    text = json.dumps(json_schema(kind), indent=2, sort_keys=True) + "\n"
    Path(__file__).with_name("schemas").joinpath(f"{kind}.json").write_text(text, encoding="utf-8")
