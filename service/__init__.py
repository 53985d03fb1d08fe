"""What a long-running camwarden process needs from its host, shared by agent and server:
systemd's notify protocol and journal (:mod:`service.systemd`). Imports nothing of ours."""
