"""A small authoritative DNS server on loopback, for tests.

``ZoneServer`` serves one or more BIND-format zones (each text with its ``$ORIGIN``)
over UDP and TCP on the same 127.0.0.1 port, from a background thread, so sync and
async tests can both use it. It answers as an authoritative server does: AA set,
CNAMEs chased inside its zones, NXDOMAIN and NODATA with the zone's SOA in the
authority section (RFC 2308 §3), TC over UDP when the answer does not fit
(RFC 1035 §4.2.1, RFC 6891 §6.2.5), the full answer over TCP (RFC 7766).

Test hooks: ``servfail`` and ``drop`` (sets of names answered SERVFAIL, or never
answered), ``drop_types`` (a set of (name, type) pairs never answered, e.g.
``("example.com", "TXT")``: one type times out while the others answer), ``shuffle``
(true by default: the records of an RRset go out in random order, as dnspython and
many servers send them; false keeps the zone's order, for suites whose expectations
depend on it), ``set_ad`` (set the AD bit in answers), ``udp_limit`` (a UDP size cap
below the client's EDNS size, as BIND's ``max-udp-size``), and per-(name, type)
query counters. A failure inside the server thread is kept and raised by :meth:`stop`,
so a broken test server fails the test instead of timing out.

Not supported: wildcards, delegations, DNSSEC records, zone transfers.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections import Counter
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.SOA import SOA

LOOPBACK = "127.0.0.1"
MAX_CNAME_CHAIN = 8
# Used when a zone text has no SOA at its origin, so negative answers can still be
# cached by the client (RFC 2308 §5): MINIMUM 60 s.
DEFAULT_SOA = "@ 300 IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n"


def name_key(name: dns.name.Name | str) -> str:
    """The counter and hook key for a name: lower case, no trailing dot."""
    text = name if isinstance(name, str) else name.to_text()
    return text.rstrip(".").lower()


def _parse_zone(text: str) -> tuple[dns.name.Name, dns.zone.Zone]:
    zone = dns.zone.from_text(text, origin=None, relativize=False, check_origin=False)
    origin = zone.origin
    assert origin is not None, "a zone text needs an $ORIGIN or absolute names"
    if zone.get_rdataset(origin, dns.rdatatype.SOA) is None:
        soa = dns.zone.from_text(DEFAULT_SOA, origin=origin, relativize=False, check_origin=False)
        zone.replace_rdataset(origin, soa.find_rdataset(origin, dns.rdatatype.SOA))
    return origin, zone


def make_zone(origin: str, records: str = "", *, ttl: int = 300, minimum: int = 60) -> str:
    """A zone text: ``$ORIGIN``, ``$TTL``, an SOA (negative TTL ``minimum``), ``records``.

    Leading blanks are stripped from every line of ``records`` so tests can indent
    them; every record must therefore name its owner (``@`` for the origin).
    """
    lines = "".join(line.lstrip() + "\n" for line in records.splitlines())
    return (
        f"$ORIGIN {origin.rstrip('.')}.\n$TTL {ttl}\n"
        f"@ IN SOA ns hostmaster 1 3600 600 86400 {minimum}\n{lines}"
    )


class ZoneServer:
    """Serve ``zones`` on 127.0.0.1:``port`` (UDP and TCP) until :meth:`stop`."""

    def __init__(self, *zones: str, set_ad: bool = False, udp_limit: int | None = None) -> None:
        self.set_ad = set_ad
        self.udp_limit = udp_limit
        self.servfail: set[str] = set()  # names (name_key form) answered SERVFAIL
        self.drop: set[str] = set()  # names whose queries get no answer at all
        self.drop_types: set[tuple[str, str]] = set()  # (name, TYPE) never answered
        self.shuffle = True  # RRset order in answers: random (True) or the zone's
        self.queries: Counter[tuple[str, str]] = Counter()  # (name, type) over both
        self.tcp_queries: Counter[tuple[str, str]] = Counter()  # (name, type) over TCP
        self.errors: list[Exception] = []  # failures in the server thread
        self.port = 0
        self._lock = threading.Lock()
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.set_zone(*zones)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def set_zone(self, *zones: str) -> None:
        """Replace all zone data; each text is one zone with its own ``$ORIGIN``."""
        parsed = dict(map(_parse_zone, zones))
        with self._lock:
            self._zones = parsed

    def count(self, name: str, rdtype: str = "TXT", *, tcp: bool = False) -> int:
        """How many queries for (``name``, ``rdtype``) arrived (over TCP only if ``tcp``)."""
        with self._lock:
            counter = self.tcp_queries if tcp else self.queries
            return counter[(name_key(name), rdtype.upper())]

    # -- life cycle -------------------------------------------------------------

    def start(self) -> ZoneServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._udp, self._tcp = self._bind()
        self.port = self._udp.getsockname()[1]
        self._wake = socket.socketpair()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"ZoneServer:{self.port}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        assert self._wake is not None
        self._wake[1].send(b"x")
        thread.join(timeout)
        for sock in (self._udp, self._tcp, *self._wake):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake = None
        if thread.is_alive():
            raise RuntimeError(f"ZoneServer thread did not stop within {timeout} s")
        if self.errors:
            raise RuntimeError("ZoneServer failed while answering") from self.errors[0]

    def __enter__(self) -> ZoneServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _bind(attempts: int = 10) -> tuple[socket.socket, socket.socket]:
        """A UDP socket on a free loopback port and a listening TCP socket on the same."""
        for _ in range(attempts):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((LOOPBACK, 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((LOOPBACK, udp.getsockname()[1]))
                tcp.listen(16)
            except OSError:
                udp.close()
                tcp.close()
                continue
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        raise OSError("no loopback port free for both UDP and TCP")

    # -- the socket loop (server thread) -----------------------------------------

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._wake is not None
        buffers: dict[socket.socket, bytearray] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ)
            selector.register(self._tcp, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    for key, _ in selector.select(timeout=1.0):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        if sock is self._udp:
                            self._on_udp(sock)
                        elif sock is self._tcp:
                            self._on_accept(sock, selector, buffers)
                        elif sock in buffers:
                            self._on_tcp(sock, selector, buffers)
            finally:
                for conn in buffers:
                    conn.close()

    def _on_udp(self, sock: socket.socket) -> None:
        try:
            wire, peer = sock.recvfrom(65535)
        except OSError:
            return
        reply = self._reply(wire, tcp=False)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)

    def _on_accept(
        self,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        buffers: dict[socket.socket, bytearray],
    ) -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.settimeout(2.0)  # bounds sendall; recv only runs when data is ready
        buffers[conn] = bytearray()
        selector.register(conn, selectors.EVENT_READ)

    def _on_tcp(
        self,
        conn: socket.socket,
        selector: selectors.BaseSelector,
        buffers: dict[socket.socket, bytearray],
    ) -> None:
        try:
            data = conn.recv(65535)
        except OSError:
            data = b""
        if not data:
            selector.unregister(conn)
            del buffers[conn]
            conn.close()
            return
        buffer = buffers[conn]
        buffer += data
        # RFC 1035 §4.2.2: each TCP message is prefixed with a two-octet length.
        while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
            size = int.from_bytes(buffer[:2], "big")
            wire = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            reply = self._reply(wire, tcp=True)
            if reply is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)

    # -- answering ---------------------------------------------------------------

    def _reply(self, wire: bytes, *, tcp: bool) -> bytes | None:
        try:
            return self._reply_to(wire, tcp=tcp)
        except Exception as exc:  # keep serving; stop() reports it
            self.errors.append(exc)
            return None

    def _reply_to(self, wire: bytes, *, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not a DNS message: ignore it
        response = dns.message.make_response(query)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        key = (name_key(question.name), dns.rdatatype.to_text(question.rdtype))
        with self._lock:
            self.queries[key] += 1
            if tcp:
                self.tcp_queries[key] += 1
            zones = self._zones
        if key[0] in self.drop or key in self.drop_types:
            return None
        if key[0] in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        self._answer(response, zones, question.name, question.rdtype)
        if self.set_ad:
            response.flags |= dns.flags.AD
        if tcp:
            return response.to_wire(max_size=65535, want_shuffle=self.shuffle)
        # RFC 6891 §6.2.5: the UDP limit is the requestor's EDNS payload size (at least
        # 512); without EDNS it is 512 octets (RFC 1035 §4.2.1).
        limit = max(512, query.payload) if query.edns >= 0 else 512
        if self.udp_limit is not None:
            limit = min(limit, self.udp_limit)
        try:
            return response.to_wire(max_size=limit, want_shuffle=self.shuffle)
        except dns.exception.TooBig:
            # RFC 2181 §9: rather than a partial RRset, send no records and set TC.
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)

    @staticmethod
    def _zone_for(
        zones: dict[dns.name.Name, dns.zone.Zone], name: dns.name.Name
    ) -> tuple[dns.name.Name, dns.zone.Zone] | None:
        """(origin, zone) of the zone with the longest origin that contains ``name``."""
        best: tuple[dns.name.Name, dns.zone.Zone] | None = None
        for origin, zone in zones.items():
            if name.is_subdomain(origin) and (best is None or origin.is_subdomain(best[0])):
                best = (origin, zone)
        return best

    def _answer(
        self,
        response: dns.message.Message,
        zones: dict[dns.name.Name, dns.zone.Zone],
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
    ) -> None:
        found_zone = self._zone_for(zones, qname)
        if found_zone is None:
            response.set_rcode(dns.rcode.REFUSED)  # not authoritative for this name
            return
        origin, zone = found_zone
        response.flags |= dns.flags.AA
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            node = zone.get_node(name)
            if node is None:
                # RFC 8020: a name with names below it (an empty non-terminal) exists,
                # so it gets NODATA; otherwise NXDOMAIN.
                if not any(other.is_subdomain(name) for other in zone.nodes):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
            found = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if found is not None:
                response.answer.append(dns.rrset.from_rdata_list(name, found.ttl, list(found)))
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or rdtype == dns.rdatatype.CNAME:
                break  # NODATA
            # RFC 1034 §4.3.2 step 3a: put the CNAME in the answer and go on with its
            # target, while the target is in one of our zones.
            response.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
            alias = next(iter(cname))
            assert isinstance(alias, CNAME)
            name = alias.target
            found_zone = self._zone_for(zones, name)
            if found_zone is None:
                return  # the client follows the chain elsewhere
            origin, zone = found_zone
        soa = zone.find_rdataset(origin, dns.rdatatype.SOA)
        record = next(iter(soa))
        assert isinstance(record, SOA)
        # RFC 2308 §3: the SOA's TTL in a negative answer is min(SOA TTL, MINIMUM).
        ttl = min(soa.ttl, record.minimum)
        response.authority.append(dns.rrset.from_rdata_list(origin, ttl, [record]))
