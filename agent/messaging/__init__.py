"""Messages in and out: the issuer (number, chain, sign), the disk outbox and the MQTT client.

Received commands are handed as bytes to an injected callable (the command executor's
``receive``): messaging never imports ``agent.commands``.
"""
