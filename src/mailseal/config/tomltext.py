"""TOML text the configuration tools write (config init, the OpenDKIM import, key
rotation's edits): one way to quote a value."""

from __future__ import annotations


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: backslash and quote escaped, control
    characters as ``\\uXXXX`` (TOML 1.0 §String)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 or c == "\x7f" for c in out):
        out = "".join(f"\\u{ord(c):04X}" if ord(c) < 0x20 or c == "\x7f" else c for c in out)
    return f'"{out}"'
