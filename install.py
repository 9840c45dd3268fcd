#!/usr/bin/env python3
"""Install MangaColor: the backend's virtual environment, the Krita plugin, and a first colorized page.

    python3 install.py                       # everything, with the defaults below
    python3 install.py --krita-resources DIR # Krita's resource folder, if not the standard one
    python3 install.py --torch cuda          # the CUDA build of PyTorch (default: auto-detect)

Running it again is harmless: the environment is reused, the plugin copy replaced, the kritarc
setting written once, and the access token kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TORCH_VERSION = "2.13.0"
PLUGIN = "krita_mangacolor"
SAMPLE_INK = ROOT / "samples" / "blackjack_p007.jpg"
SAMPLE_HINTS = ROOT / "samples" / "blackjack_p007_hints.png"


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def default_krita_resources() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData/Roaming") / "krita"
    if sys.platform == "darwin":
        return Path.home() / "Library/Application Support/krita"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "krita"


def default_kritarc() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData/Local") / "kritarc"
    if sys.platform == "darwin":
        return Path.home() / "Library/Preferences/kritarc"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kritarc"


def has_nvidia_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run(cmd: list[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def make_environment(env: Path, torch_build: str, torch_index: str | None, dev: bool) -> Path:
    py = venv_python(env)
    if not py.exists():
        print(f"creating virtual environment {env}")
        venv.EnvBuilder(with_pip=True).create(env)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if torch_build == "auto":
        torch_build = "cuda" if has_nvidia_gpu() else "cpu"
    # PyPI's torch wheels run on the CPU everywhere and carry CUDA on Linux; a --torch-index such as
    # https://download.pytorch.org/whl/cpu (smaller) or .../whl/cu128 picks a specific build.
    print(f"installing PyTorch {TORCH_VERSION} ({torch_build} build)")
    run(pip + [f"torch=={TORCH_VERSION}"] + (["--index-url", torch_index] if torch_index else []))
    run(pip + ["-r", ROOT / "requirements.txt"])
    if dev:
        run(pip + ["-r", ROOT / "requirements-dev.txt"])
    return py


def install_plugin(resources: Path, py: Path, port: int) -> Path:
    pykrita = resources / "pykrita"
    pykrita.mkdir(parents=True, exist_ok=True)
    target = pykrita / PLUGIN
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / PLUGIN, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "mangacolor.desktop", pykrita / "mangacolor.desktop")
    # Krita reads action files (menu text, default shortcut) from its actions folder, letting users remap.
    actions = resources / "actions"
    actions.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / PLUGIN / "mangacolor.action", actions / "mangacolor.action")
    config = {
        "url": f"http://127.0.0.1:{port}",
        "server_command": [str(py), "-m", "backend", "serve", "--port", str(port)],
        "cwd": str(ROOT),
    }
    (target / "backend_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"installed the Krita plugin into {target}")
    return target


def build_package(out_dir: Path) -> Path:
    """The zip that Krita's Tools > Scripts > Import Python Plugin from File... installs."""
    import zipfile

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(ROOT / "mangacolor.desktop", "mangacolor.desktop")
        for path in sorted((ROOT / PLUGIN).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                z.write(path, f"{PLUGIN}/{path.relative_to(ROOT / PLUGIN).as_posix()}")
    print(f"plugin package: {target}")
    return target


def enable_plugin(kritarc: Path) -> None:
    """Set `enable_krita_mangacolor=true` in kritarc's [python] group, touching nothing else."""
    key = f"enable_{PLUGIN}"
    lines = kritarc.read_text(encoding="utf-8").splitlines() if kritarc.exists() else []
    out: list[str] = []
    section = None
    done = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if section == "[python]" and not done:
                out.append(f"{key}=true")
                done = True
            section = stripped
        elif section == "[python]" and stripped.split("=", 1)[0].strip() == key:
            if not done:
                out.append(f"{key}=true")
                done = True
            continue
        out.append(line)
    if not done:
        if section != "[python]":
            if out and out[-1].strip():
                out.append("")
            out.append("[python]")
        out.append(f"{key}=true")
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"enabled the plugin in {kritarc}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", type=Path, default=ROOT / ".venv", help="where the backend's environment goes")
    p.add_argument("--torch", choices=["auto", "cpu", "cuda"], default="auto", help="PyTorch build (auto: CUDA if nvidia-smi finds a GPU)")
    p.add_argument("--torch-index", help="package index for torch, e.g. https://download.pytorch.org/whl/cpu")
    p.add_argument("--krita-resources", type=Path, default=None, help=f"Krita's resource folder (default {default_krita_resources()})")
    p.add_argument("--kritarc", type=Path, default=None, help=f"Krita's settings file (default {default_kritarc()})")
    p.add_argument("--port", type=int, default=8765, help="port of the local backend server")
    p.add_argument("--no-dev", action="store_true", help="skip test and training-data dependencies")
    p.add_argument("--skip-krita", action="store_true", help="install the backend only")
    p.add_argument("--skip-sample", action="store_true", help="do not colorize the sample page")
    p.add_argument("--package", action="store_true", help="only build dist/krita_mangacolor.zip for Krita's plugin importer")
    args = p.parse_args(argv)
    if args.package:
        build_package(ROOT / "dist")
        return 0

    py = make_environment(args.venv, args.torch, args.torch_index, dev=not args.no_dev)
    token = subprocess.run(
        [str(py), "-c", "from backend.config import ensure_token, token_path; ensure_token(); print(token_path())"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()
    print(f"access token for the backend: {token}")
    if not args.skip_krita:
        install_plugin(args.krita_resources or default_krita_resources(), py, args.port)
        enable_plugin(args.kritarc or default_kritarc())
    if not args.skip_sample:
        out = ROOT / "output" / "sample_colorized.png"
        run([py, "-m", "backend", "colorize", SAMPLE_INK, "--hints", SAMPLE_HINTS, "-o", out,
             "--color-layer", out.with_name("sample_color_layer.png")])
        print(f"\nSample page colorized: {out}")
    print("\nDone. Start Krita, open a page, and use the MangaColor docker (Settings > Dockers > MangaColor).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
