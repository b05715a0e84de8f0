"""mailseal: e-mail authentication for mail servers.

The library API::

    import mailseal
    key = mailseal.load_key("/etc/mailseal/keys/example.com/2026-11.private")
    fields = mailseal.sign(message, domain="example.com", selector="2026-11", key=key)
    results = mailseal.verify(fields + message, dns=mailseal.StaticResolver.from_zone_file("zone"))
"""

from __future__ import annotations

from mailseal.api import sign, verify, verify_async
from mailseal.dkim.keys import KeyFileError, load_key
from mailseal.dkim.verify import DkimResult
from mailseal.dns.resolver import DnsResolver
from mailseal.dns.static import StaticResolver
from mailseal.results import Result

__all__ = [
    "DkimResult",
    "DnsResolver",
    "KeyFileError",
    "Result",
    "StaticResolver",
    "load_key",
    "sign",
    "verify",
    "verify_async",
]
__version__ = "0.1.0"
