"""DMARC (RFC 9989, and RFC 7489 as a compatibility mode), its aggregate reports
(RFC 9990) and the historic author-domain policies (ADSP, DomainKeys).

The core is pure (``record``, ``evaluate``, ``reportxml``, ``authres``); discovery
is a coroutine over the injected resolver (``discover``, ``check``, ``adsp``);
``report`` keeps evaluations in SQLite for the aggregate reports.
"""
