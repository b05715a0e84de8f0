"""``mailseal postfix-config --mode proxy`` (the lines parse with Postfix's own
postconf, with no unknown parameter) and ``mailseal proxy``'s options."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mailseal.frontends.cli.main import main
from mailseal.frontends.cli.service_cmds import listen_address

LISTENERS = """
[[listeners]]
kind = "proxy"
address = "inet:127.0.0.1:12027"
role = "out"
relay = "127.0.0.1:12028"
[[listeners]]
kind = "proxy"
address = "inet:127.0.0.1:12025"
role = "in"
relay = "[::1]:12026"
"""


def config_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                 *options: str) -> str:
    path = tmp_path / "mailseal.toml"
    path.write_text(text)
    assert main(["postfix-config", "-c", str(path), "--mode", "proxy", *options]) == 0
    return capsys.readouterr().out


def test_proxy_lines_follow_the_listeners(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = config_lines(tmp_path, capsys, LISTENERS, "--submission-port", "2525")
    lines = out.splitlines()
    assert "2525 inet n       -       y       -       -       smtpd" in lines
    assert "  -o content_filter=mailseal-out:[127.0.0.1]:12027" in lines
    assert "  -o receive_override_options=no_address_mappings" in lines
    assert "  -o smtp_send_xforward_command=yes" in lines
    assert "127.0.0.1:12028 inet n  -       n       -       -       smtpd" in lines
    assert "  -o content_filter=" in lines
    assert "  -o smtpd_authorized_xforward_hosts=127.0.0.0/8,[::1]/128" in lines
    assert "  -o smtpd_proxy_filter=127.0.0.1:12025" in lines
    assert "[::1]:12026 inet n  -       n       -       -       smtpd" in lines
    assert "note:" not in out


def test_proxy_lines_without_listeners_use_dkimproxy_ports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = config_lines(tmp_path, capsys, "[dns]\ntimeout = 2.0\n")
    assert 'note: no proxy listener with role = "out"' in out
    assert "  -o content_filter=mailseal-out:[127.0.0.1]:10027" in out
    assert "  -o smtpd_proxy_filter=127.0.0.1:10025" in out
    assert out.splitlines().count("submission inet n       -       y       -       -       smtpd") == 1


@pytest.mark.skipif(shutil.which("postconf", path="/usr/sbin:/usr/bin") is None,
                    reason="postconf not installed (Debian postfix)")
def test_proxy_lines_parse_with_postconf(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = config_lines(tmp_path, capsys, LISTENERS)
    main_cf, _, master_cf = out.partition("# /etc/postfix/master.cf")
    confdir = tmp_path / "postfix"
    confdir.mkdir()
    (confdir / "main.cf").write_text(main_cf)
    (confdir / "master.cf").write_text("# /etc/postfix/master.cf" + master_cf)
    for name in ("main.cf", "master.cf"):  # Postfix waits on files changed this second
        os.utime(confdir / name, (time.time() - 60, time.time() - 60))
    postconf = shutil.which("postconf", path="/usr/sbin:/usr/bin")
    assert postconf is not None
    for flag in ("-n", "-M", "-P"):
        proc = subprocess.run([postconf, "-c", str(confdir), flag], capture_output=True,
                              text=True, check=False)
        assert (proc.returncode, proc.stderr) == (0, ""), (flag, proc.stderr)
    services = subprocess.run([postconf, "-c", str(confdir), "-M"], capture_output=True,
                              text=True, check=True).stdout
    assert len(services.splitlines()) == 5


def test_milter_mode_is_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mailseal.toml"
    path.write_text('[[listeners]]\nkind = "milter"\naddress = "inet:127.0.0.1:8891"\n')
    assert main(["postfix-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "smtpd_milters = inet:127.0.0.1:8891" in out and "content_filter" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "out"], "--role, --listen and --relay go together"),
    (["--role", "out", "--listen", "127.0.0.1:10027", "--relay", "nowhere"],
     "relay 'nowhere' must be HOST:PORT"),
    (["--role", "out", "--listen", "127.0.0.1:99999", "--relay", "127.0.0.1:1"],
     "invalid port '99999'"),
])
def test_proxy_command_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: list[str], message: str) -> None:
    path = tmp_path / "mailseal.toml"
    path.write_text("[dns]\ntimeout = 2.0\n")
    assert main(["proxy", "-c", str(path), *args]) == 2
    assert message in capsys.readouterr().err


def test_proxy_command_without_proxy_listeners(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mailseal.toml"
    path.write_text("[dns]\ntimeout = 2.0\n")
    assert main(["proxy", "-c", str(path)]) == 2
    assert 'no [[listeners]] of kind proxy' in capsys.readouterr().err


@pytest.mark.parametrize(("given", "address"), [
    ("127.0.0.1:10027", "inet:127.0.0.1:10027"),
    ("[::1]:10027", "inet6:[::1]:10027"),
    ("inet:10027@127.0.0.1", "inet:10027@127.0.0.1"),
])
def test_listen_address(given: str, address: str) -> None:
    assert listen_address(given) == address
