"""``python -m protocol``: regenerate the shipped JSON Schemas from the message types."""

from pathlib import Path

from protocol.messages import write_schemas

write_schemas(Path(__file__).with_name("schemas"))
