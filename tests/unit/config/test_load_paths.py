"""Relative paths in the configuration are relative to the file's folder."""

from __future__ import annotations

from pathlib import Path

from mailseal.config.default import write_default_config
from mailseal.config.load import load_config


def test_default_config_records_dmarc_beside_itself(tmp_path: Path) -> None:
    path, keyfile = write_default_config(tmp_path / "etc", domain="example.com", selector="s1")
    config = load_config(path)
    assert config.settings.dmarc.report_db == str(tmp_path / "etc" / "dmarc-reports.sqlite")
    assert config.settings.dmarc.enforce is False
    assert config.keys[config.settings.keys[0].name].source == str(keyfile.resolve())


def test_proxy_files_are_beside_the_configuration(tmp_path: Path) -> None:
    path, _ = write_default_config(tmp_path / "etc", domain="example.com", selector="s1")
    assert "[proxy]" not in path.read_text()
    path.write_text(path.read_text() + '\n[proxy]\nspool_directory = "spool"\n'
                    'tls_cert = "tls/c.pem"\ntls_key = "/abs/k.pem"\n')
    proxy = load_config(path).settings.proxy
    assert (proxy.spool_directory, proxy.tls_cert, proxy.tls_key) == (
        str(tmp_path / "etc" / "spool"), str(tmp_path / "etc" / "tls" / "c.pem"), "/abs/k.pem")
