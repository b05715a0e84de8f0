"""The end-to-end harness itself: private Postfix instances relaying to capture sinks."""

from __future__ import annotations

import re
import smtplib
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from mta import (
    DataAction,
    MailSink,
    Outcome,
    PrivatePostfix,
    SmtpSinkProcess,
    free_port,
    missing_postfix,
    process_alive,
    run_smtp_source,
    wait_until,
    write_source_file,
)

MISSING = missing_postfix()
pytestmark = pytest.mark.skipif(MISSING is not None,
                                reason=f"end-to-end tests need Postfix: {MISSING}")

SENDER = "alice@example.test"
RECIPIENT = "bob@example.net"
# Complete (Date, Message-ID, qualified addresses), so Postfix's cleanup adds nothing but
# its Received: field; dots, blanks and 8-bit bytes test transparency.
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: harness check\r\n"
    b"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n"
    b"Message-ID: <harness-1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-Folded: first part\r\n"
    b"\tsecond part\r\n"
    b"\r\n"
    b"line one\r\n"
    b".a line with a leading dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b" trailing blanks \t \r\n"
    b"\r\n"
    b"8-bit: \xc3\xa9t\xc3\xa9\r\n"
    b"last line\r\n"
)
RECEIVED = re.compile(rb"Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")
SLOW_RETRY = {"queue_run_delay": "300s", "minimal_backoff_time": "300s",
              "maximal_backoff_time": "300s"}
SUBMISSION = ("127.0.0.1:{submission} inet n - n - - smtpd\n"
              "  -o syslog_name=postfix/submission\n")

StartPostfix = Callable[..., PrivatePostfix]


def numbered(n: int) -> bytes:
    return MESSAGE.replace(b"<harness-1@", f"<harness-{n}@".encode())


@pytest.fixture
def relay(mail_sink: MailSink, private_postfix: StartPostfix) -> PrivatePostfix:
    return private_postfix(relayhost=mail_sink.relayhost, service_ports=["submission"],
                           services=SUBMISSION)


def test_relayed_message_arrives_intact(relay: PrivatePostfix, mail_sink: MailSink) -> None:
    sent = relay.send(MESSAGE, SENDER, [RECIPIENT])
    [got] = mail_sink.wait_for(1)
    assert (got.mail_from, got.rcpt_tos) == (SENDER, (RECIPIENT,))
    assert got.data.endswith(MESSAGE)
    added = got.data[:-len(MESSAGE)]
    assert RECEIVED.fullmatch(added), added  # one Received: field on top, nothing else
    assert added.startswith(b"Received: from client.mailseal.test (localhost [127.0.0.1])")
    assert f"with ESMTP id {sent.queue_id}".encode() in added
    assert got.fields("x-folded") == [b"X-Folded: first part\r\n\tsecond part\r\n"]
    relay.wait_queue_empty()
    assert relay.postconf("-h", "relayhost").strip() == mail_sink.relayhost
    # postlogd writes the log asynchronously: wait for a line rather than read at once.
    relay.wait_for_log(rf"{sent.queue_id}: to=<{RECIPIENT}>, .* status=sent")
    assert relay.log_problems() == []


def test_deferred_message_waits_for_flush(mail_sink: MailSink,
                                          private_postfix: StartPostfix) -> None:
    postfix = private_postfix(relayhost=mail_sink.relayhost, main_cf=SLOW_RETRY)
    mail_sink.default_action = DataAction.reject(451, "4.3.0 not now")
    sent = postfix.send(MESSAGE, SENDER, [RECIPIENT])
    mail_sink.wait_for_attempts(1)
    [queued] = wait_until(lambda: [q for q in postfix.queue() if q.queue_name == "deferred"],
                          timeout=10, what="the message in the deferred queue")
    assert queued.queue_id == sent.queue_id
    assert [r.address for r in queued.recipients] == [RECIPIENT]
    assert "451 4.3.0 not now" in queued.recipients[0].delay_reason

    mail_sink.default_action = DataAction.accept()
    assert mail_sink.messages == []  # back-off is 300 s: nothing retries by itself
    postfix.flush()
    [got] = mail_sink.wait_for(1)
    postfix.wait_queue_empty()
    assert got.data.endswith(MESSAGE)
    assert [a.outcome for a in mail_sink.attempts] == [Outcome.REPLY, Outcome.ACCEPT]


def test_broken_sessions_are_retried(relay: PrivatePostfix, mail_sink: MailSink) -> None:
    mail_sink.plan(DataAction.drop_mid_data(), DataAction.drop_before_reply(),
                   DataAction.accept_then_close())
    relay.send(MESSAGE, SENDER, [RECIPIENT])
    # back-off 1 s, then 2 s; Postfix may also hold the dead destination until its next
    # queue run, so allow a generous bound (a CI run once needed more than 20 s).
    attempts = mail_sink.wait_for_attempts(3, timeout=60)
    assert [a.outcome for a in attempts] == [
        Outcome.DROP_MID_DATA, Outcome.DROP_BEFORE_REPLY, Outcome.ACCEPT_THEN_CLOSE]
    assert attempts[0].data and attempts[1].data.startswith(attempts[0].data[:20])
    assert attempts[1].data == attempts[2].data  # fully received twice, accepted once
    relay.wait_queue_empty()
    relay.wait_for_log(r"status=deferred \(lost connection with 127\.0\.0\.1\[127\.0\.0\.1\] "
                       r"while sending end of data -- message may be sent more than once")
    relay.send(numbered(2), SENDER, [RECIPIENT])  # the closed connection is not reused
    assert [m.fields("message-id") for m in mail_sink.wait_for(2)] == [
        [b"Message-ID: <harness-1@example.test>\r\n"],
        [b"Message-ID: <harness-2@example.test>\r\n"]]


def test_smtp_source_load(relay: PrivatePostfix, mail_sink: MailSink, tmp_path: Path) -> None:
    relay.smtp_source(count=40, sessions=4, size=2000)
    relay.smtp_source(count=2, message_file=write_source_file(tmp_path / "m.eml", MESSAGE))
    got = mail_sink.wait_for(42, timeout=30)
    relay.wait_queue_empty()
    assert len(mail_sink.attempts) == 42
    assert {m.rcpt_tos for m in got} == {("sink@relay.mailseal.test",)}
    from_file = [m for m in got if m.data.endswith(MESSAGE + b"\r\n")]  # -F adds a line
    assert len(from_file) == 2


def test_submission_service_and_local_submission(relay: PrivatePostfix,
                                                 mail_sink: MailSink) -> None:
    assert relay.ports["submission"] not in (relay.port, 0)
    relay.send(numbered(1), SENDER, [RECIPIENT], port=relay.ports["submission"])
    relay.sendmail(numbered(2), SENDER, [RECIPIENT])
    got = {m.fields("message-id")[0]: m for m in mail_sink.wait_for(2)}
    assert got[b"Message-ID: <harness-1@example.test>\r\n"].data.endswith(numbered(1))
    assert b"(Postfix, from userid 0)" in got[b"Message-ID: <harness-2@example.test>\r\n"].data
    relay.wait_for_log(r"postfix/submission/smtpd\[\d+\]: connect from localhost")
    relay.wait_for_log(r"postfix/pickup\[\d+\]: \w+: uid=0 from=<alice@example.test>")


def test_reload_applies_main_cf(relay: PrivatePostfix) -> None:
    relay.reload({"message_size_limit": "2000", "smtpd_banner": "$myhostname ESMTP {root}"})
    with pytest.raises(smtplib.SMTPDataError) as rejected:
        relay.send(MESSAGE + b"x" * 2000 + b"\r\n", SENDER, [RECIPIENT])
    assert rejected.value.smtp_code == 552
    banner = f"{relay.parameters()['myhostname']} ESMTP {relay.root}".encode()
    with smtplib.SMTP(timeout=10) as client:
        assert client.connect("127.0.0.1", relay.port) == (220, banner)


def test_start_retries_when_port_taken(mail_sink: MailSink,
                                       private_postfix: StartPostfix) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        postfix = private_postfix(relayhost=mail_sink.relayhost,
                                  port_source=lambda: next(ports, None) or free_port())
        assert postfix.port != busy
        assert f"bind 127.0.0.1 port {busy}: Address already in use" in postfix.log_text()
    postfix.send(MESSAGE, SENDER, [RECIPIENT])
    mail_sink.wait_for(1)


def test_instances_side_by_side_stop_cleanly(mail_sink: MailSink) -> None:
    with PrivatePostfix(relayhost=mail_sink.relayhost, name="one") as one, \
            PrivatePostfix(relayhost=mail_sink.relayhost, name="two") as two:
        masters = [pid for pid in (one.master_pid(), two.master_pid()) if pid is not None]
        assert len(set(masters)) == 2
        assert one.port != two.port and one.queue_dir != two.queue_dir
        one.send(numbered(1), SENDER, [RECIPIENT])
        two.send(numbered(2), SENDER, [RECIPIENT])
        mail_sink.wait_for(2)
        daemons = one.processes()
        assert masters[0] in daemons and len(daemons) > 1

        one.stop()
        assert not process_alive(masters[0])
        assert not any(process_alive(pid) for pid in daemons)
        assert one.processes() == [] and one.master_pid() is None
        assert two.master_pid() == masters[1]  # the other instance is untouched
        two.send(numbered(3), SENDER, [RECIPIENT])
        mail_sink.wait_for(3)
        roots = [one.root, two.root]
    assert not process_alive(masters[1])
    assert not any(root is not None and root.exists() for root in roots)


def test_sink_keeps_data_exactly(tmp_path: Path) -> None:
    long_line = b"y" * 5000 + b"\r\n"  # longer than aiosmtpd's line limit
    data = MESSAGE + long_line + b"bare\nLF and bare\rCR\r\n"
    with MailSink(directory=tmp_path) as sink, smtplib.SMTP(
            "127.0.0.1", sink.port, local_hostname="direct.test", timeout=10) as client:
        client.sendmail(SENDER, [RECIPIENT, "carol@example.org"], data,
                        mail_options=["BODY=8BITMIME"])
        sink.fail_next(1, 554, "5.7.1 no thanks")
        with pytest.raises(smtplib.SMTPDataError) as rejected:
            client.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert rejected.value.smtp_code == 554
        [got] = sink.wait_for(1)
    assert got.data == data
    assert (got.helo, got.rcpt_tos) == ("direct.test", (RECIPIENT, "carol@example.org"))
    assert got.mail_options == ("BODY=8BITMIME",)
    assert got.body.startswith(b"line one\r\n.a line")
    assert (tmp_path / "000001.eml").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001.eml", "000001.json"]
    assert [a.outcome for a in sink.attempts] == [Outcome.ACCEPT, Outcome.REPLY]


def test_smtp_sink_process_counts_and_dumps(tmp_path: Path) -> None:
    with pytest.raises(PermissionError, match="not searchable"):
        SmtpSinkProcess(dump_dir=tmp_path / "dump").start()  # below pytest's 0700 root
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        with SmtpSinkProcess(dump_dir=Path(folder) / "dump") as sink:
            run_smtp_source(sink.port, count=6, sessions=2, size=300, timeout=30)
            assert sink.wait_for(6) == 6
            dumps = sink.dump_files()
            assert len(dumps) == 6
            assert all(p.read_bytes().startswith(b"X-Client-Addr: 127.0.0.1\n") for p in dumps)
