"""Real mail servers on loopback, for end-to-end tests and benchmarks.

- ``MailSink``: an SMTP capture server (aiosmtpd, in a thread with its own event loop)
  that keeps every message exactly as received (dot-unstuffed, CRLF kept) and can be
  told how to answer each DATA: accept, reply 4xx/5xx, drop the connection in the
  middle of the data or before the final reply, or accept and then close.
- ``SmtpSinkProcess``: Postfix's ``smtp-sink``, far faster, for load; it counts
  messages (``-c``) and can dump them (``-d``; its dump format uses LF line ends, so it
  is not byte-exact).
- ``PrivatePostfix``: a Postfix instance of its own (config, queue and data directories
  in a temporary directory, its own ``maillog_file``, chroot off) listening on loopback
  ports, relaying everything to ``[127.0.0.1]:PORT`` — usually a sink. It never reads
  or writes ``/etc/postfix``: every command gets ``-c CONFDIR`` and ``MAIL_CONFIG``.

Running Postfix needs root (``postfix start``); ``missing_postfix()`` says why the
harness cannot run here, for a skip message. Every wait is bounded, every process
started is stopped, and only 127.0.0.1 is used.

Postfix facts these helpers rely on (3.7; see also PEERS.md):
- The master ``chdir``s to ``queue_directory`` and every daemon inherits it, so the
  processes of one instance are the ones whose ``/proc/PID/cwd`` is its queue.
- ``postfix start`` runs ``master -w``: it returns once the listeners are bound, and
  fails ("bind ... Address already in use" in the log) when a port was taken since
  ``free_port()`` chose it; ``start()`` then retries with new ports.
- Postfix re-reads main.cf while its mtime is within the current second, sleeping
  300 ms each time, in every command: config files are backdated after writing.
- On stop the master signals its process group; here PID 1 is slow to reap orphans,
  so a stopped master can linger as a zombie: ``Z`` counts as gone.
- ``smtpd`` needs ``proxymap`` (``local_recipient_maps``); with a service missing from
  master.cf it retries for ~100 s, then master throttles it — clients just hang. The
  ``smtp-source`` binary has no timeout of its own: always run it with one.
- For clients matching ``local_header_rewrite_clients`` (default: the instance's own
  ``inet_interfaces``, so every loopback client here) cleanup adds missing
  Date/Message-ID/From fields and qualifies bare addresses; send complete messages
  (or set that parameter empty) when bytes must survive. Relayed, a bare LF becomes
  CRLF, a bare CR a space, and lines over ``smtp_line_length_limit`` (998) are broken
  with CRLF SPACE.
"""

from __future__ import annotations

from daemons import free_port

from mta.postfix import (
    MASTER_CF,
    PrivatePostfix,
    QueuedMessage,
    QueuedRecipient,
    SendResult,
)
from mta.sink import (
    DataAction,
    MailSink,
    Outcome,
    SinkError,
    SinkMessage,
)
from mta.source import (
    SmtpSinkProcess,
    run_smtp_source,
    write_source_file,
)
from mta.tools import (
    CLIENT_HELO,
    COMMAND_TIMEOUT,
    LOOPBACK,
    MAIL_OWNER,
    SBIN_PATH,
    STOP_TIMEOUT,
    PostfixError,
    find_program,
    is_listening,
    missing_postfix,
    pids_with_cwd,
    postfix_program,
    process_alive,
    wait_until,
)

__all__ = [
    "CLIENT_HELO",
    "COMMAND_TIMEOUT",
    "LOOPBACK",
    "MAIL_OWNER",
    "MASTER_CF",
    "SBIN_PATH",
    "STOP_TIMEOUT",
    "DataAction",
    "MailSink",
    "Outcome",
    "PostfixError",
    "PrivatePostfix",
    "QueuedMessage",
    "QueuedRecipient",
    "SendResult",
    "SinkError",
    "SinkMessage",
    "SmtpSinkProcess",
    "find_program",
    "free_port",
    "is_listening",
    "missing_postfix",
    "pids_with_cwd",
    "postfix_program",
    "process_alive",
    "run_smtp_source",
    "wait_until",
    "write_source_file",
]
