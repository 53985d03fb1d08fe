"""Alerts: new critical findings and silent agents, deduplicated, routed down the org tree.

``tracker`` turns the current state into alert events (and daily trend snapshots), ``channels``
sends them (signed webhooks, e-mail), ``worker`` runs both inside ``camwarden-server run``.
"""
