"""Hikvision cameras over ISAPI (HTTP digest, XML bodies)."""
