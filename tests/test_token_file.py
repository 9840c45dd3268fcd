"""The access token file (issue 14): created private whatever the umask, an existing file that others
can read is tightened or refused with a message, never used silently."""

import os
import sys

import pytest

from backend import config
from backend.__main__ import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "mangacolor"


def test_config_folder_and_token_are_private_whatever_the_umask(home):
    old = os.umask(0)
    try:
        token = config.ensure_token()
    finally:
        os.umask(old)
    assert token and home.stat().st_mode & 0o777 == 0o700
    assert (home / "token").stat().st_mode & 0o777 == 0o600


def test_token_readable_by_others_is_made_private(home):
    home.mkdir(parents=True, mode=0o755)
    (home / "token").write_text("existing-token\n")
    (home / "token").chmod(0o644)
    assert config.ensure_token() == "existing-token"
    assert (home / "token").stat().st_mode & 0o777 == 0o600 and home.stat().st_mode & 0o777 == 0o700


def test_token_that_cannot_be_made_private_is_refused_with_a_message(home, monkeypatch, capsys):
    home.mkdir(parents=True, mode=0o700)
    (home / "token").write_text("existing-token\n")
    (home / "token").chmod(0o644)

    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(config.os, "chmod", refuse)
    with pytest.raises(config.TokenFileError, match="can be read by other users"):
        config.ensure_token()
    assert main(["serve", "--port", "1"]) == 2  # before the model loads, without a traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "chmod 600" in err and "Traceback" not in err
