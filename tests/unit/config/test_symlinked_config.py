"""A configuration reached through a symlink: every reader takes relative paths beside
the link, as the daemon (load_config) does."""

from __future__ import annotations

from pathlib import Path

from mailseal.config.default import write_default_config
from mailseal.config.load import load_config
from mailseal.keys.configedit import replace_config
from mailseal.keys.listing import inspect_keys
from mailseal.keys.rotation import key_path


def test_key_paths_agree_with_the_daemon(tmp_path: Path) -> None:
    real, keyfile = write_default_config(tmp_path / "etc", domain="example.com", selector="s1")
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    target = elsewhere / "real.toml"
    text = real.read_text()
    assert str(keyfile) in text
    target.write_text(text.replace(str(keyfile), str(keyfile.relative_to(real.parent))))
    real.unlink()  # the file lives elsewhere ...
    real.symlink_to(target)  # ... and /etc points to it; the key stays beside the link
    config = load_config(real)
    entry = config.settings.keys[0]
    assert not Path(entry.file).is_absolute()
    daemon_path = Path(config.keys[entry.name].source)
    assert daemon_path.resolve() == keyfile.resolve()
    assert [f.path.resolve() for f in inspect_keys(config.settings, real)] == [daemon_path.resolve()]
    assert key_path(config, entry.file).resolve() == daemon_path.resolve()
    replace_config(real, target.read_text() + "\n# edited\n")  # validates beside the link
    assert real.is_symlink() and target.read_text().endswith("# edited\n")
