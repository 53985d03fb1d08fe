"""The signed advisory feed (FW-01/FW-02): rules built offline, verified and matched on the agent.

``model``  the feed payload (strict msgspec types, the wire format inside the JWS)
``match``  pure matching of a ``DeviceIdentity`` against compiled rules
``feed``   verification (signature, anti-rollback, expiry) and the loaded, compiled feed
``build``  the offline builder: KEV catalogue + vendor rule file -> signed feed
"""
