"""Drivers for the independent DKIM implementations used as interop oracles.

Each peer signs a message (returning the DKIM-Signature field to prepend, ending in
CRLF) and verifies one (returning one ``PeerResult`` per signature, topmost first).
All of them fetch keys from the loopback ``ZoneServer`` on ``KeySet.dns_port``:

- dkimpy: ``dkim.sign`` and ``dkim.DKIM(msg).verify(idx, dnsfunc)`` with a dnspython
  resolver aimed at the port;
- Mail::DKIM: a small Perl script (written at test time) using ``Mail::DKIM::Signer``
  and ``Mail::DKIM::Verifier`` (``Strict => 1``) with ``Net::DNS::Resolver`` aimed at
  the port;
- OpenDKIM: ``opendkim -x CONF -t FILE`` in ``Mode s`` (prints the header it would
  add) and ``Mode v`` with ``AlwaysAddARHeader`` (we read the Authentication-Results
  it would add). It resolves through libunbound: ``Nameservers 127.0.0.1@PORT`` plus
  a ``ResolverConfiguration`` file, because unbound by default refuses to query
  localhost (``do-not-query-localhost``) and answers NXDOMAIN itself for the
  RFC 6761 ``test.`` zone (``local-zone: "test." static``).
- opendkim-testmsg signs with the library's defaults (rsa-sha1, relaxed/simple) and
  has no option for a DNS server, so it is only used for signing.

A peer whose program or module is missing makes the test skip, naming what to install
(or fail, with MAILSEAL_REQUIRE_PEERS=1). ``Mailseal`` at the end is our side, with the
same interface.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest

from mailseal import api
from mailseal.dkim.verify import DkimResult, VerifyPolicy
from mailseal.dns.resolver import DnsResolver

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"
CANONICALIZATIONS = ("simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed")
TIMEOUT = 30.0


@dataclass(frozen=True)
class KeySet:
    """The test domain's keys (files mode 0600) and where their records are served."""

    domain: str
    dns_port: int
    rsa_selector: str
    ed_selector: str
    rsa_pem: Path  # PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), which every peer reads
    ed_pem: Path  # PKCS#8 PEM (mailseal, OpenDKIM)
    ed_seed: Path  # base64 of the raw 32-byte seed (dkimpy's format)
    unbound_conf: Path  # resolver settings for OpenDKIM (see the module docstring)

    def selector(self, algorithm: str) -> str:
        return self.ed_selector if algorithm == ED25519 else self.rsa_selector

    def key_file(self, algorithm: str) -> Path:
        return self.ed_pem if algorithm == ED25519 else self.rsa_pem


@dataclass(frozen=True)
class PeerResult:
    """One signature's verdict as the peer words it (lower case), with its reason text."""

    result: str
    detail: str = ""


class PeerError(AssertionError):
    """The peer program failed outright (not a verification verdict)."""


def unavailable(what: str) -> NoReturn:
    """Skip: a peer is not installed. With MAILSEAL_REQUIRE_PEERS=1 (CI, where the Debian
    packages are installed by ``make debs``), fail instead, so a broken install cannot
    pass as a green run."""
    if os.environ.get("MAILSEAL_REQUIRE_PEERS") == "1":
        pytest.fail(f"{what}, and MAILSEAL_REQUIRE_PEERS=1")
    pytest.skip(what)


def run(argv: list[str], *, stdin: bytes = b"") -> tuple[bytes, bytes]:
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        raise PeerError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                        f"{proc.stderr.decode(errors='replace')}")
    return proc.stdout, proc.stderr


def find_program(name: str) -> str | None:
    """``name`` on PATH, or in the sbin directories Debian puts opendkim in (often not on
    a non-root PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def dkim_signature_count(message: bytes) -> int:
    head = message.split(b"\r\n\r\n", 1)[0]
    return len(re.findall(rb"(?im)^dkim-signature[ \t]*:", head))


class Peer:
    """The interface the interop tests use; subclasses fill it in."""

    name = ""
    #: algorithms this peer can sign with / verify
    signs: frozenset[str] = frozenset({RSA})
    verifies: frozenset[str] = frozenset({RSA})

    def __init__(self, keys: KeySet, workdir: Path) -> None:
        self.keys = keys
        self.workdir = workdir

    def __repr__(self) -> str:
        return self.name

    def sign(self, message: bytes, *, algorithm: str = RSA,
             canonicalization: str = "relaxed/simple") -> bytes:
        raise NotImplementedError

    def verify(self, message: bytes) -> list[PeerResult]:
        raise NotImplementedError

    def signed(self, message: bytes, **kwargs: str) -> bytes:
        return self.sign(message, **kwargs) + message

    def tmpfile(self, suffix: str, data: bytes) -> Path:
        """A new file in the work folder (kept for post-mortems; pytest prunes it)."""
        fd, name = tempfile.mkstemp(suffix=suffix, prefix=f"{type(self).__name__}-",
                                    dir=self.workdir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return Path(name)


# -- dkimpy ------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Dkimpy(Peer):
    name = "dkimpy"
    signs = verifies = frozenset({RSA, ED25519})

    def __init__(self, keys: KeySet, workdir: Path) -> None:
        super().__init__(keys, workdir)
        try:
            import dkim  # type: ignore[import-untyped]
            import nacl  # noqa: F401  (dkimpy's Ed25519)
        except ImportError as exc:
            unavailable(f"dkimpy with PyNaCl not installed (pip install dkimpy pynacl): {exc}")
        self.dkim = dkim
        import dns.resolver

        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = ["127.0.0.1"]
        self.resolver.port = keys.dns_port
        self.resolver.lifetime = 5.0

    def dnsfunc(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT value at ``name`` (strings joined), or None."""
        import dns.resolver

        try:
            answer = self.resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout,
                                           raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        for rrset in answer.response.answer:
            for rdata in rrset:
                return b"".join(rdata.strings)
        return None

    def sign(self, message: bytes, *, algorithm: str = RSA,
             canonicalization: str = "relaxed/simple") -> bytes:
        header, body = canonicalization.encode().split(b"/")
        key = (self.keys.ed_seed if algorithm == ED25519 else self.keys.rsa_pem).read_bytes()
        field: bytes = self.dkim.sign(
            message, self.keys.selector(algorithm).encode(), self.keys.domain.encode(), key,
            canonicalize=(header, body), signature_algorithm=algorithm.encode())
        return field

    def verify(self, message: bytes) -> list[PeerResult]:
        results = []
        for idx in range(dkim_signature_count(message)):
            recorder = _Recorder()
            logger = logging.getLogger(f"interop.dkimpy.{id(recorder)}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            logger.addHandler(recorder)
            try:
                ok = self.dkim.DKIM(message, logger=logger).verify(idx=idx, dnsfunc=self.dnsfunc)
            except self.dkim.DKIMException as exc:
                # DKIM.verify raises for some failures (body hash, format) and returns
                # False (with a log line) for others.
                results.append(PeerResult(self._word(exc), f"{type(exc).__name__}: {exc}"))
                continue
            finally:
                logger.removeHandler(recorder)
            detail = "; ".join(line for line in recorder.lines if not line.startswith("sig:"))
            results.append(PeerResult("pass" if ok else "fail", detail))
        return results

    def _word(self, exc: Exception) -> str:
        if isinstance(exc, self.dkim.ValidationError):
            return "fail"
        if isinstance(exc, self.dkim.DnsTimeoutError):
            return "temperror"
        return "permerror"


# -- Mail::DKIM ---------------------------------------------------------------------

MAIL_DKIM_SCRIPT = r"""
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

binmode STDIN;
binmode STDOUT;
my $mode = shift @ARGV;
my $message = do { local $/; <STDIN> };   # keep $/ local: PrivateKey->load reads lines

if ($mode eq 'sign') {
    my ($algorithm, $method, $domain, $selector, $keyfile) = @ARGV;
    my $signer = Mail::DKIM::Signer->new(
        Algorithm => $algorithm, Method => $method, Domain => $domain,
        Selector => $selector, KeyFile => $keyfile);
    $signer->PRINT($message);
    $signer->CLOSE;
    my $signature = $signer->signature or die "no signature\n";
    print $signature->as_string, "\015\012";
}
elsif ($mode eq 'verify') {
    my ($port) = @ARGV;
    Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
        nameservers => ['127.0.0.1'], port => $port, udp_timeout => 5, tcp_timeout => 5));
    my $verifier = Mail::DKIM::Verifier->new(Strict => 1);
    $verifier->PRINT($message);
    $verifier->CLOSE;
    for my $sig ($verifier->signatures) {
        print join("\t", 'signature', $sig->result // '', $sig->result_detail // ''), "\n";
    }
}
elsif ($mode eq 'features') {
    print eval { require Mail::DKIM::Algorithm::ed25519_sha256; 1 } ? "ed25519\n" : "\n";
}
else {
    die "usage: $0 sign|verify|features ...\n";
}
"""


@cache
def _perl_has_mail_dkim() -> bool:
    perl = shutil.which("perl")
    if perl is None:
        return False
    probe = subprocess.run([perl, "-MMail::DKIM::Verifier", "-MNet::DNS::Resolver", "-e", "1"],
                           capture_output=True, timeout=TIMEOUT, check=False)
    return probe.returncode == 0


class MailDkim(Peer):
    name = "Mail::DKIM"

    def __init__(self, keys: KeySet, workdir: Path) -> None:
        super().__init__(keys, workdir)
        if not _perl_has_mail_dkim():
            unavailable("Mail::DKIM not available (Debian: libmail-dkim-perl libnet-dns-perl)")
        self.script = workdir / "mail-dkim.pl"
        self.script.write_text(MAIL_DKIM_SCRIPT)
        features = run(["perl", str(self.script), "features"])[0].split()
        if b"ed25519" in features:
            self.signs = self.verifies = frozenset({RSA, ED25519})

    def sign(self, message: bytes, *, algorithm: str = RSA,
             canonicalization: str = "relaxed/simple") -> bytes:
        out, _ = run(["perl", str(self.script), "sign", algorithm, canonicalization,
                      self.keys.domain, self.keys.selector(algorithm),
                      str(self.keys.key_file(algorithm))], stdin=message)
        return out

    def verify(self, message: bytes) -> list[PeerResult]:
        out, _ = run(["perl", str(self.script), "verify", str(self.keys.dns_port)], stdin=message)
        results = []
        for line in out.decode().splitlines():
            _, result, detail = line.split("\t")
            results.append(PeerResult(result, detail))
        return results


# -- OpenDKIM -------------------------------------------------------------------------

#: One DKIM result in OpenDKIM's Authentication-Results, up to the next ";":
#: 'dkim=pass (2048-bit key; unprotected) header.d=...' or
#: 'dkim=fail reason="signature verification failed" (2048-bit key; ...) header.d=...'
AR_DKIM = re.compile(r'\bdkim=(\w+)((?:"[^"]*"|\([^)]*\)|[^;])*)')
AR_REASON = re.compile(r'reason="([^"]*)"')
AR_COMMENT = re.compile(r"\(([^)]*)\)")


class OpenDkim(Peer):
    name = "OpenDKIM"
    signs = verifies = frozenset({RSA, ED25519})

    def __init__(self, keys: KeySet, workdir: Path) -> None:
        super().__init__(keys, workdir)
        program = find_program("opendkim")
        if program is None:
            unavailable("opendkim not installed (Debian: opendkim)")
        self.program = program

    def conf(self, lines: dict[str, str]) -> Path:
        # Keys live under /tmp; OpenDKIM refuses keys in a directory others can write
        # to unless RequireSafeKeys is off.
        settings = {"Syslog": "no", "RequireSafeKeys": "no", **lines}
        text = "".join(f"{k} {v}\n" for k, v in settings.items())
        return self.tmpfile(".conf", text.encode())

    def sign(self, message: bytes, *, algorithm: str = RSA,
             canonicalization: str = "relaxed/simple") -> bytes:
        conf = self.conf({
            "Mode": "s", "Domain": self.keys.domain, "Selector": self.keys.selector(algorithm),
            "KeyFile": str(self.keys.key_file(algorithm)),
            "Canonicalization": canonicalization, "SignatureAlgorithm": algorithm,
        })
        path = self.tmpfile(".eml", message)
        out, err = run([self.program, "-x", str(conf), "-t", str(path)])
        # stdout: "opendkim: PATH:" then the field it would add, its lines ending in CRLF.
        lines = re.split(rb"\r?\n", out)
        start = next((i for i, line in enumerate(lines)
                      if line.lower().startswith(b"dkim-signature:")), None)
        if start is None:
            raise PeerError(f"opendkim did not sign:\n{(out + err).decode(errors='replace')}")
        field = [lines[start]]
        for line in lines[start + 1:]:
            if line[:1] not in (b" ", b"\t"):
                break
            field.append(line)
        return b"\r\n".join(field) + b"\r\n"

    def verify(self, message: bytes) -> list[PeerResult]:
        conf = self.conf({
            "Mode": "v", "AlwaysAddARHeader": "yes",
            "Nameservers": f"127.0.0.1@{self.keys.dns_port}",
            "ResolverConfiguration": str(self.keys.unbound_conf),
        })
        path = self.tmpfile(".eml", message)
        out, err = run([self.program, "-x", str(conf), "-t", str(path), "-vvv"])
        text = (out + err).decode(errors="replace")
        if re.search(r": message not signed$", text, re.M):
            # No DKIM-Signature it would judge (see the relaxed-body quirk in PEERS.md).
            return [PeerResult("none", "message not signed")]
        # -vvv prints each header it would insert: "### INSHEADER: ... hvalue='...'"
        results = []
        for value in re.findall(r"hname='Authentication-Results' hvalue='([^']*)'", text):
            for word, rest in AR_DKIM.findall(value):
                reason = AR_REASON.search(rest)
                comment = AR_COMMENT.search(rest)
                detail = reason.group(1) if reason else comment.group(1) if comment else ""
                results.append(PeerResult(word, detail))
        if not results:
            raise PeerError(f"no Authentication-Results from opendkim:\n{text}")
        return results


class OpenDkimTestmsg(Peer):
    """``opendkim-testmsg``: libopendkim with its defaults (it has no option for the
    algorithm or canonicalization, nor for a DNS server, so it only signs here)."""

    name = "opendkim-testmsg"
    signs = frozenset({"rsa-sha1"})
    verifies = frozenset()

    def __init__(self, keys: KeySet, workdir: Path) -> None:
        super().__init__(keys, workdir)
        program = find_program("opendkim-testmsg")
        if program is None:
            unavailable("opendkim-testmsg not installed (Debian: opendkim-tools)")
        self.program = program

    def signed(self, message: bytes, **kwargs: str) -> bytes:
        """The whole signed message, as opendkim-testmsg writes it (-C: CRLF)."""
        assert not kwargs, "opendkim-testmsg has no signing options"
        out, _ = run([self.program, "-C", "-d", self.keys.domain,
                      "-s", self.keys.rsa_selector, "-k", str(self.keys.rsa_pem),
                      "-t", str(self.workdir)], stdin=message)
        return out


# -- mailseal's side --------------------------------------------------------------------


class Mailseal:
    """mailseal through its library API, with the loopback zone as its DNS (the same
    sign/signed/verify shape as the peers, but verify returns mailseal's DkimResult)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    def sign(self, message: bytes, *, algorithm: str = RSA,
             canonicalization: str = "relaxed/simple") -> bytes:
        return api.sign(message, domain=self.keys.domain,
                        selector=self.keys.selector(algorithm),
                        key=self.keys.key_file(algorithm), algorithm=algorithm,
                        canonicalization=canonicalization)

    def signed(self, message: bytes, **kwargs: str) -> bytes:
        return self.sign(message, **kwargs) + message

    def verify(self, message: bytes, policy: VerifyPolicy | None = None) -> list[DkimResult]:
        # A resolver per call: api.verify runs its own event loop each time, and a
        # resolver's in-flight lookups belong to one loop.
        resolver = DnsResolver(nameservers=[f"127.0.0.1:{self.keys.dns_port}"], timeout=2.0)
        return api.verify(message, dns=resolver, policy=policy)


PEER_CLASSES: dict[str, type[Peer]] = {
    "dkimpy": Dkimpy,
    "maildkim": MailDkim,
    "opendkim": OpenDkim,
}
