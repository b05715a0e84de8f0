"""Interop tests against independent DKIM implementations (dkimpy, Mail::DKIM, OpenDKIM)."""
