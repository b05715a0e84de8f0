"""`make run`: a first run on a fresh machine.

Creates a signing key for this machine's domain under ./local (mode 0600) if there
is none, prints the DNS record to publish, then signs a sample message and verifies
it against that record served from a local zone file, so the whole path is shown
working end to end.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent.parent
LOCAL = HERE / "local"


def domain_of_host() -> str:
    fqdn = socket.getfqdn()
    parts = fqdn.split(".")
    return ".".join(parts[1:]) if len(parts) > 2 else (fqdn if "." in fqdn else "example.com")


def main() -> int:
    domain = os.environ.get("MAILSEAL_DOMAIN") or domain_of_host()
    selector = time.strftime("%Y-%m")
    keydir = LOCAL / "keys" / domain
    keyfile = keydir / f"{selector}.private"
    keydir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not keyfile.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        print(f"created {keyfile} (RSA 2048, mode 0600)")
    from mailseal.dkim.keys import load_key

    key_obj = load_key(keyfile)
    p = "p=" + base64.b64encode(key_obj.public_data()).decode()
    strings = " ".join(f'"{p[i:i + 250]}"' for i in range(0, len(p), 250))
    record = f'{selector}._domainkey.{domain}. IN TXT ( "v=DKIM1; k=rsa; " {strings} )'
    zone = LOCAL / f"{domain}.zone"
    zone.write_text(f"$ORIGIN {domain}.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n"
                    f"{record}\n")
    print("\nPublish this DNS record:\n")
    print("  " + record)
    sample = (f"From: postmaster@{domain}\r\nTo: someone@example.org\r\n"
              f"Subject: mailseal quickstart\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
              f"\r\nHello from mailseal.\r\n").encode()
    exe = [sys.executable, "-m", "mailseal.frontends.cli.main"]
    signed = subprocess.run([*exe, "sign", "-d", domain, "-s", selector, "-k", str(keyfile)],
                            input=sample, capture_output=True, check=True).stdout
    print("\nA sample message, signed:\n")
    print("  " + signed.decode().replace("\r\n", "\n  "))
    print("Verified against the record above (served from a local zone file):\n")
    done = subprocess.run([*exe, "verify", "--dns-file", str(zone), "--authserv-id", domain],
                          input=signed)
    print(f"\nSign a message: .venv/bin/mailseal sign -d {domain} -s {selector} -k {keyfile} < msg.eml")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
