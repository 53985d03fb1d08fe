"""Messages in and out: the issuer (number, chain, sign), the disk outbox and the MQTT client.

A received command goes, as bytes, to an injected callable (the runner hands it to the command
executor): messaging never imports ``agent.commands``.
"""
