"""One audit of the site: identification (``identify``), the audit itself (``auditor``), its
result (``results``) and the short-lived worker process the daemon runs it in (``worker``)."""
