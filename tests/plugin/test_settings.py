"""Settings sources (settings.py) and the token's location."""

import json

from krita_mangacolor import settings


def reader(values):
    return lambda group, key, default: values.get(key, default) if group == "mangacolor" else default


def test_defaults_without_anything(tmp_path):
    s = settings.load_settings(None, env={}, file_path=tmp_path / "none.json")
    assert s.url == "http://127.0.0.1:8765"
    assert s.server_command == [] and not s.can_start_server
    assert s.hint_layer == "Hints" and s.reference_layer == "Reference"


def test_file_then_settings_then_env(tmp_path):
    f = tmp_path / "backend_config.json"
    f.write_text(json.dumps({"url": "http://127.0.0.1:9000", "server_command": ["/x/python", "-m", "backend", "serve"], "cwd": "/x"}))
    s = settings.load_settings(None, env={}, file_path=f)
    assert s.url == "http://127.0.0.1:9000" and s.server_command[0] == "/x/python" and s.cwd == "/x"
    s = settings.load_settings(reader({"url": "localhost:9100", "hint_layer": "Colours"}), env={}, file_path=f)
    assert s.url == "http://localhost:9100" and s.hint_layer == "Colours" and s.server_command[0] == "/x/python"
    s = settings.load_settings(reader({"url": "localhost:9100"}), env={"MANGACOLOR_URL": "http://127.0.0.1:1234/"}, file_path=f)
    assert s.url == "http://127.0.0.1:1234" and s.url_from_env


def test_broken_file_is_a_note_not_a_crash(tmp_path):
    f = tmp_path / "backend_config.json"
    f.write_text("{not json")
    s = settings.load_settings(None, env={}, file_path=f)
    assert s.url == settings.DEFAULT_URL and s.notes and "ignored" in s.notes[0]
    f.write_text(json.dumps({"server_command": "python -m backend serve"}))
    s = settings.load_settings(None, env={}, file_path=f)
    assert s.server_command == [] and "list of strings" in s.notes[0]


def test_save_and_reload_roundtrip(tmp_path):
    store = {}
    write = lambda g, k, v: store.__setitem__(k, v)  # noqa: E731
    s = settings.Settings(url="http://127.0.0.1:8800", server_command=["/a b/python", "-m", "backend"], cwd="/p", hint_layer="H")
    settings.save_settings(write, s)
    back = settings.load_settings(reader(store), env={}, file_path=tmp_path / "none.json")
    assert back.url == s.url and back.server_command == s.server_command and back.cwd == "/p" and back.hint_layer == "H"


def test_command_text_roundtrip():
    argv = ["/opt/manga color/.venv/bin/python", "-m", "backend", "serve", "--port", "8765"]
    assert settings.split_command(settings.join_command(argv)) == argv
    assert settings.split_command('["a", "b c"]') == ["a", "b c"]
    assert settings.split_command("  ") == []


def test_token_path_per_platform(tmp_path):
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg", "APPDATA": "C:/Users/u/AppData/Roaming"}
    assert str(settings.token_path(env, "linux")) == "/xdg/mangacolor/token"
    assert str(settings.token_path({"HOME": "/home/u"}, "linux")) == "/home/u/.config/mangacolor/token"
    assert str(settings.token_path(env, "darwin")) == "/home/u/Library/Application Support/mangacolor/token"
    assert settings.token_path(env, "win32").parts[-2:] == ("mangacolor", "token")


def test_read_token(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert settings.read_token(env, "linux") is None
    (tmp_path / "mangacolor").mkdir()
    (tmp_path / "mangacolor" / "token").write_text("abc\n")
    assert settings.read_token(env, "linux") == "abc"


def test_manual_start_hint_uses_the_port_of_the_url():
    assert "--port 9123" in settings.manual_start_hint("http://127.0.0.1:9123")
    assert "--port 8765" in settings.manual_start_hint("http://127.0.0.1")
