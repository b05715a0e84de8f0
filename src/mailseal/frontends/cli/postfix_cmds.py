"""``mailseal postfix-config``: the exact Postfix lines for the chosen mode."""

from __future__ import annotations

from dataclasses import dataclass

import click

from mailseal.config.load import ConfigError, load_settings
from mailseal.config.model import Listener, parse_address
from mailseal.frontends.cli.config_cmds import config_option


def register(group: click.Group) -> None:
    group.add_command(postfix_config_cmd)


def milter_address(listener: Listener, queue_directory: str) -> str:
    """How Postfix names the milter socket: inet:HOST:PORT, or a unix path relative to
    the queue directory when the socket lies inside Postfix's chroot."""
    family, host, port = parse_address(listener.address)
    if family == "unix":
        prefix = queue_directory.rstrip("/") + "/"
        if host.startswith(prefix):
            return "unix:/" + host[len(prefix):]
        return f"unix:{host}"
    return f"inet:[{host}]:{port}" if family == "inet6" else f"inet:{host}:{port}"


def milter_lines(listener: Listener, queue_directory: str = "/var/spool/postfix") -> str:
    address = milter_address(listener, queue_directory)
    return f"""\
# /etc/postfix/main.cf — mailseal as a milter (sign mail from internal hosts and
# authenticated users, verify the rest). Then: postfix reload
smtpd_milters = {address}
non_smtpd_milters = {address}
milter_protocol = 6
# Keep mail when mailseal is down or answers late: the client is told to retry.
milter_default_action = tempfail
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 120s
# Macros mailseal reads (Postfix sends these by default; listed for clarity).
milter_connect_macros = j {{daemon_name}} {{client_addr}} {{client_name}} v _
milter_mail_macros = i {{auth_type}} {{auth_authen}} {{auth_author}} {{mail_addr}}
# Optional: mark the submission service so its mail is signed whatever the client
# address (add signing_daemon_names = ["ORIGINATING"] to mailseal.toml), in master.cf:
#   submission inet n - y - - smtpd
#     -o milter_macro_daemon_name=ORIGINATING
"""


# -- SMTP proxy --------------------------------------------------------------------------

#: DKIMproxy's conventional ports, used when the configuration has no proxy listener.
DEFAULT_OUT = (("127.0.0.1", 10027), ("127.0.0.1", 10028))
DEFAULT_IN = (("127.0.0.1", 10025), ("127.0.0.1", 10026))
LOOPBACK_NETWORKS = "127.0.0.0/8,[::1]/128"  # no spaces: a master.cf -o value


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ProxyPlan:
    """What the proxy lines are made of: the two routes and the services they hang on."""

    out_listen: tuple[str, int] = DEFAULT_OUT[0]
    out_relay: tuple[str, int] = DEFAULT_OUT[1]
    in_listen: tuple[str, int] = DEFAULT_IN[0]
    in_relay: tuple[str, int] = DEFAULT_IN[1]
    submission: str = "submission"  # the master.cf service whose mail is signed
    inbound: str = "smtp"  # the one whose mail is verified before the queue
    chroot: str = "y"  # Debian's default for smtpd
    submission_auth: bool = True  # TLS + SASL lines on the submission service
    notes: tuple[str, ...] = ()

    @classmethod
    def from_listeners(cls, listeners: tuple[Listener, ...],
                       submission: str = "submission") -> ProxyPlan:
        routes: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {}
        notes = []
        for item in listeners:
            if item.kind == "proxy" and item.role and item.relay and item.role not in routes:
                _, host, port = parse_address(item.address)
                routes[item.role] = ((host, port), Listener.parse_relay(item.relay))
        for role, default in (("out", DEFAULT_OUT), ("in", DEFAULT_IN)):
            if role not in routes:
                routes[role] = default
                notes.append(f"no proxy listener with role = \"{role}\" in the configuration: "
                             f"listen {_hostport(*default[0])}, relay {_hostport(*default[1])} "
                             "assumed (add them to mailseal.toml)")
        return cls(out_listen=routes["out"][0], out_relay=routes["out"][1],
                   in_listen=routes["in"][0], in_relay=routes["in"][1], notes=tuple(notes),
                   submission=submission)


def _return_service(relay: tuple[str, int], name: str, options: list[str]) -> list[str]:
    """The smtpd the proxy hands mail back to: accepts from the proxy only, trusts its
    XFORWARD, applies no restrictions the first pass applied already."""
    return [f"{_hostport(*relay)} inet n  -       n       -       -       smtpd",
            f"  -o syslog_name=postfix/{name}", *options,
            "  -o smtpd_helo_restrictions=", "  -o smtpd_client_restrictions=",
            "  -o smtpd_sender_restrictions=", "  -o smtpd_relay_restrictions=",
            "  -o smtpd_recipient_restrictions=permit_mynetworks,reject",
            "  -o smtpd_data_restrictions=",
            f"  -o mynetworks={LOOPBACK_NETWORKS}",
            f"  -o smtpd_authorized_xforward_hosts={LOOPBACK_NETWORKS}"]


def proxy_main_cf(plan: ProxyPlan) -> str:
    notes = "".join(f"# note: {n}\n" for n in plan.notes)
    return f"""\
# /etc/postfix/main.cf — mailseal as an SMTP proxy (DKIMproxy style).
{notes}# Nothing is required here: each route is set on its own services in master.cf.
# To sign ALL mail that enters the queue (not just the submission service), use
# instead of the submission service's two -o lines below:
#   content_filter = mailseal-out:[{plan.out_listen[0]}]:{plan.out_listen[1]}
#   receive_override_options = no_address_mappings
"""


def proxy_master_cf(plan: ProxyPlan) -> str:
    out_host, out_port = plan.out_listen
    auth = ["  -o smtpd_tls_security_level=encrypt", "  -o smtpd_sasl_auth_enable=yes",
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"] \
        if plan.submission_auth else []
    lines = [
        "# /etc/postfix/master.cf — then: postfix reload",
        "#",
        "# 1. Outgoing: mail submitted here is signed after the queue:",
        f"#    {plan.submission} -> queue -> content_filter -> mailseal proxy role out "
        f"({_hostport(*plan.out_listen)})",
        f"#    -> Postfix again on {_hostport(*plan.out_relay)} -> queue -> delivery.",
        "#    A proxy failure only delays mail: Postfix keeps it queued and retries.",
        f"#    (This {plan.submission} entry replaces the one you have.)",
        f"{plan.submission} inet n       -       {plan.chroot}       -       -       smtpd",
        f"  -o syslog_name=postfix/{plan.submission.rpartition(':')[2]}", *auth,
        f"  -o content_filter=mailseal-out:[{out_host}]:{out_port}",
        "  -o receive_override_options=no_address_mappings",
        "mailseal-out unix -       -       n       -       10      smtp",
        "  -o syslog_name=postfix/mailseal-out",
        "  -o smtp_send_xforward_command=yes",
        "  -o disable_mime_output_conversion=yes",
        "  -o smtp_generic_maps=",
        *_return_service(plan.out_relay, "mailseal-out-return", [
            "  -o content_filter=",
            "  -o receive_override_options=no_unknown_recipient_checks,"
            "no_header_body_checks,no_milters"]),
        "#",
        "# 2. Incoming: mail received here is verified before the queue; each SMTP",
        "#    command is answered once the proxy and the Postfix behind it answered it:",
        f"#    {plan.inbound} -> smtpd_proxy_filter -> mailseal proxy role in "
        f"({_hostport(*plan.in_listen)})",
        f"#    -> Postfix on {_hostport(*plan.in_relay)} -> queue.",
        f"#    (This {plan.inbound} entry replaces the one you have.)",
        f"{plan.inbound}      inet  n       -       {plan.chroot}       -       -       smtpd",
        f"  -o smtpd_proxy_filter={_hostport(*plan.in_listen)}",
        "  -o smtpd_proxy_timeout=150s",
        "  -o smtpd_client_connection_count_limit=10",
        *_return_service(plan.in_relay, "mailseal-in-return", [
            "  -o receive_override_options=no_unknown_recipient_checks"]),
    ]
    return "\n".join(lines) + "\n"


@click.command("postfix-config")
@config_option
@click.option("--mode", type=click.Choice(["milter", "proxy"]), default="milter",
              show_default=True, help="How Postfix hands mail to mailseal.")
@click.option("--queue-directory", default="/var/spool/postfix", show_default=True,
              help="Postfix's queue_directory (for unix sockets inside the chroot).")
@click.option("--submission-port", type=click.IntRange(1, 65535), default=587,
              show_default=True, help="Proxy mode: the port whose mail is signed.")
def postfix_config_cmd(config_path: str, mode: str, queue_directory: str,
                       submission_port: int) -> None:
    """Print the main.cf (and master.cf) lines that connect Postfix to mailseal.

    \b
    Examples:
      mailseal postfix-config -c /etc/mailseal/mailseal.toml --mode milter
      mailseal postfix-config -c /etc/mailseal/mailseal.toml --mode proxy
    """
    try:  # only the listeners are needed: no key file is opened
        settings = load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if mode == "proxy":
        service = "submission" if submission_port == 587 else str(submission_port)
        plan = ProxyPlan.from_listeners(settings.listeners, submission=service)
        click.echo(proxy_main_cf(plan) + "\n" + proxy_master_cf(plan), nl=False)
        return
    listeners = [item for item in settings.listeners if item.kind == mode]
    if not listeners:
        raise click.ClickException(f"{config_path}: no [[listeners]] with kind = \"{mode}\"")
    click.echo(milter_lines(listeners[0], queue_directory), nl=False)
