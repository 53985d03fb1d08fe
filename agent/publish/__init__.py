"""Getting signed messages off the box: the disk outbox and the MQTT publisher."""
