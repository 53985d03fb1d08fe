"""What the agent trusts and holds secret: its Ed25519 identity and enrollment (``identity``), its
MQTT client certificate (``certificate``), the encrypted camera-credential vault (``vault``) and
the check that private files are readable by the service alone (``keyfiles``)."""
