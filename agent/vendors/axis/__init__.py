"""Axis cameras over VAPIX (HTTP digest; JSON and ``param.cgi`` bodies)."""
