"""The key lifecycle: make a key, publish its record, check what DNS serves, roll
over to a new selector, revoke the old one (``mailseal genkey``, ``dns-record``,
``testkey``, ``rotate``, ``keys list``; docs/keys.md).

``check`` is pure (a DNS answer and a key in, verdict lines out); the other modules
read and write files: key files through ``mailseal.keystore``, the configuration
and the roll-over state beside it.
"""
