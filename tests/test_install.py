"""install.py: the plugin lands beside its .desktop, kritarc is edited once and nothing else changes."""

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mc_install", ROOT / "install.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)


def test_enable_plugin_is_idempotent_and_keeps_other_settings(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_krita_mangacolor=false\n\n[Window]\nbar=2\n")
    install.enable_plugin(rc)
    install.enable_plugin(rc)
    text = rc.read_text()
    assert text.count("enable_krita_mangacolor") == 1 and "enable_krita_mangacolor=true" in text
    assert "enable_other=true" in text and "foo=1" in text and "bar=2" in text
    py = text.index("[python]")
    assert py < text.index("enable_krita_mangacolor=true") < text.index("[Window]")


def test_enable_plugin_creates_kritarc(tmp_path):
    rc = tmp_path / "sub" / "kritarc"
    install.enable_plugin(rc)
    assert rc.read_text() == "[python]\nenable_krita_mangacolor=true\n"


def test_install_plugin_twice(tmp_path):
    py = Path(sys.executable)
    for _ in range(2):
        target = install.install_plugin(tmp_path, py, 8799)
    assert (tmp_path / "pykrita" / "mangacolor.desktop").exists()
    assert (tmp_path / "actions" / "mangacolor.action").exists()
    assert (target / "__init__.py").exists()
    config = json.loads((target / "backend_config.json").read_text())
    assert config["url"] == "http://127.0.0.1:8799"
    assert config["server_command"][1:4] == ["-m", "backend", "serve"]
    assert Path(config["cwd"]) == ROOT


def test_package_zip_is_importable_by_krita(tmp_path):
    import zipfile

    target = install.build_package(tmp_path)
    names = zipfile.ZipFile(target).namelist()
    # Krita's importer wants the .desktop at the top and the plugin folder beside it.
    assert "mangacolor.desktop" in names and "krita_mangacolor/__init__.py" in names
    assert not any("__pycache__" in n for n in names)
