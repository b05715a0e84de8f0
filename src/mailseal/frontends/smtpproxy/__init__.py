"""The DKIMproxy-style SMTP proxy: ``listen`` → pipeline → ``relay``, in role ``out``
(sign) or ``in`` (verify), before the queue (``smtpd_proxy_filter``) or after it
(``content_filter``).

Layers, each its own module: ``replies`` and ``events`` (values), ``dotstuff`` (the
DATA stream both ways), ``server_codec`` and ``client_codec`` (SMTP without I/O),
``server`` (the asyncio loop and the ``SmtpHandler`` protocol), ``relay`` (the next
hop), ``spool`` and ``assemble`` (the message while it is judged), ``proxy`` (the
handler: the proxy's semantics), ``listener`` (serving one listener).
"""

from mailseal.frontends.smtpproxy.listener import start_listener

__all__ = ["start_listener"]
