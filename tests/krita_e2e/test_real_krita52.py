"""The real-Krita end-to-end test in Krita 5.2.9 too (where most colorists are): the same harness plugin
(harness/mangacolor_e2e_harness) inside a Debian trixie chroot with Krita 5.2.9, against the real backend
and the fake one running outside it (the chroot shares the network, and its session folder is seen from both
sides, so the plugin reads the token the backend wrote).

The chroot is the one backend/bench/colorize_mask.py builds (`python -m backend.bench.colorize_mask --build`,
about 2 minutes, needs root and the network; .ci/run builds it when it runs as root; DEVELOPERS.md). Running it
needs root (chroot, /proc and /dev bind-mounted only while the session runs). Skipped with the reason when the
chroot is missing or this is not root.

A subset of the 5.1.5 run, what differs between the versions or is new: the actions (the Colorize Mask action
is enabled in 5.2), the pickers, Colorize (RGBA), role choices through a .kra, detect panels -> a palette for
one panel -> colorize -> the .kra keeps panel layer and palettes, and Export hints to Colorize Mask.
MANGACOLOR_E2E52_ONLY overrides the scenario list. Costs about 2-3 minutes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import test_real_krita as e2e51  # noqa: E402  (the 5.1.5 test's helpers)

SCENARIOS = os.environ.get("MANGACOLOR_E2E52_ONLY", "action,options,pickers,rgba,kra,panels,cmask")
KRITA_TIMEOUT_S = float(os.environ.get("MANGACOLOR_E2E52_TIMEOUT", "600"))


def _chroot():
    try:
        from backend.bench import colorize_mask as cm
    except Exception as exc:  # pragma: no cover - the backend's requirements missing
        return None, f"backend.bench.colorize_mask does not import: {exc}"
    ok, note = cm.status(cm.DEFAULT_ROOT)
    return (cm if ok else None), note


CM, WHY = _chroot()
pytestmark = pytest.mark.skipif(CM is None, reason=f"Krita 5.2.9 chroot: {WHY}")


def _env(inside: str, display: str | None) -> dict:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "HOME": f"{inside}/home", "XDG_CONFIG_HOME": f"{inside}/config", "XDG_DATA_HOME": f"{inside}/data",
        "XDG_CACHE_HOME": f"{inside}/cache", "XDG_RUNTIME_DIR": f"{inside}/runtime", "TMPDIR": f"{inside}/tmp",
        "DBUS_SESSION_BUS_ADDRESS": "disabled:", "QT_QPA_PLATFORM": "xcb", "PYTHONDONTWRITEBYTECODE": "1",
    }
    if display:
        env["DISPLAY"] = display
    return env


@pytest.fixture(scope="module")
def e2e52():
    if not e2e51.VENV_PYTHON.exists():
        pytest.skip(f"the backend's venv python {e2e51.VENV_PYTHON} is missing")
    root = Path(CM.DEFAULT_ROOT).resolve()
    (root / "tmp").mkdir(exist_ok=True)
    session = Path(tempfile.mkdtemp(prefix="mangacolor-e2e52-", dir=root / "tmp"))
    os.chmod(session, 0o755)
    inside = "/" + str(session.relative_to(root))
    for d in ("home", "cache", "runtime", "tmp", "shots"):
        (session / d).mkdir(parents=True, exist_ok=True)
    (session / "runtime").chmod(0o700)
    e2e51.install_plugins(session / "data", session / "config", session / "swap")
    (session / "config" / "kritarc").write_text(
        f"swaplocation={inside}/swap\n\n[python]\nenable_krita_mangacolor=true\nenable_mangacolor_e2e_harness=true\n"
    )
    backend_log, fake_log, krita_log = session / "backend.log", session / "fake_backend.log", session / "krita.log"
    outside_env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "PYTHON", "XDG_", "MANGACOLOR_"))}
    outside_env.update(HOME=str(session / "home"), XDG_CONFIG_HOME=str(session / "config"), PYTHONUNBUFFERED="1")
    port, fake_port = e2e51.free_port(), e2e51.free_port()
    url, fake_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{fake_port}"
    backend = fake = xvfb = krita = None
    lock = open(root.with_name(root.name + ".session.lock"), "w")
    try:
        backend = subprocess.Popen(
            [str(e2e51.VENV_PYTHON), "-m", "backend", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=outside_env, stdout=backend_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        health = e2e51.wait_health(url, backend, backend_log, e2e51.BACKEND_START_TIMEOUT_S)
        token = (session / "config" / "mangacolor" / "token").read_text().strip()
        fake = subprocess.Popen(
            [sys.executable, str(e2e51.FAKE_BACKEND), "--port", str(fake_port), "--token", token],
            env=outside_env, stdout=fake_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        e2e51.wait_health(fake_url, fake, fake_log, 30)
        fcntl.flock(lock, fcntl.LOCK_EX)  # one Krita session in the chroot at a time (the bench uses it too)
        with CM._Mounts(root):
            try:
                xvfb, display = CM._start_xvfb(root, _env(inside, None), session / "xvfb.log")
                env = _env(inside, display)
                env.update(
                    MANGACOLOR_URL=url, MANGACOLOR_E2E_RESULT=f"{inside}/report.json", MANGACOLOR_E2E_TMP=f"{inside}/tmp",
                    MANGACOLOR_E2E_FAKE_URL=fake_url, MANGACOLOR_E2E_SHOTS=f"{inside}/shots", MANGACOLOR_E2E_ONLY=SCENARIOS,
                )
                krita = subprocess.Popen(
                    ["chroot", str(root), "/usr/bin/krita", "--nosplash"], env=env, cwd="/",
                    stdout=krita_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                )
                try:
                    rc = krita.wait(KRITA_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    rc = None
            finally:
                CM._stop_group(krita, grace=5)
                if xvfb is not None:
                    CM._stop_group(xvfb, grace=5)
                    xvfb._mangacolor_reader.close()
                CM._kill_leftovers(root, lambda m: print(m, file=sys.stderr))
        report = e2e51.read_report(session / "report.json", rc, krita_log, backend_log, "Krita 5.2", KRITA_TIMEOUT_S)
        report.update(_backend_health=health, _tmp=str(session))
        print(f"\nKrita {report.get('krita_version')} e2e timings (s): {json.dumps(report.get('timings'))}", file=sys.stderr)
        yield report
    finally:
        lock.close()
        e2e51.stop(krita)
        e2e51.stop(fake)
        e2e51.stop(backend, grace=10)
        if os.environ.get("MANGACOLOR_E2E_KEEP"):
            print(f"e2e 5.2 files kept in {session}", file=sys.stderr)
        else:
            shutil.rmtree(session, ignore_errors=True)


def test_krita_is_5_2(e2e52):
    e2e51.checked(e2e52, "setup")
    assert str(e2e52.get("krita_version", "")).startswith("5.2"), e2e52.get("krita_version")
    assert e2e52["_rc"] == (0 if all(c["ok"] for c in e2e52["checks"]) else 1), e2e52["_krita_output"]


@pytest.mark.parametrize("prefix", ["action", "options", "pickers", "rgba", "kra", "panels", "cmask"])
def test_scenario_in_krita_5_2(e2e52, prefix):
    if prefix not in SCENARIOS.split(","):
        pytest.skip(f"{prefix} not in MANGACOLOR_E2E52_ONLY")
    e2e51.checked(e2e52, prefix)
