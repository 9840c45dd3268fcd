"""Training end to end on a tiny synthetic folder: data listing, page cache, sampler, 2 steps, export."""

from pathlib import Path

import cv2
import numpy as np

from backend.data import build_cache, list_sources
from backend.inputs import HINT_MASK, HINT_RGB, N_INPUT_CHANNELS, PROPAGATED_MASK, PROPAGATED_RGB
from backend.sampler import Sampler
from backend.split import is_held_out


def tiny_folder(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    (root / "art" / "sub").mkdir(parents=True)
    for i in range(n):
        img = np.full((160, 200, 3), 255, np.uint8)
        for _ in range(4):
            col = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(30, 170)), int(rng.integers(30, 130))), int(rng.integers(15, 40)), col, -1)
            cv2.circle(img, (int(rng.integers(30, 170)), int(rng.integers(30, 130))), int(rng.integers(15, 40)), (0, 0, 0), 3)
        folder = root / "art" / ("sub" if i % 2 else "")
        cv2.imwrite(str(folder / f"pic_{i}.png"), img)
    return root


def test_sources_honour_the_split(tmp_path):
    root = tiny_folder(tmp_path / "data", n=30)
    train = list_sources(root)
    held = list_sources(root, held_out=True)
    assert len(train) + len(held) == 30
    assert all(not is_held_out(s.color, root) for s in train)
    assert all(is_held_out(s.color, root) for s in held)


def test_sampler_draws_from_the_cache_it_built(tmp_path):
    """The cache of a tiny folder, then a batch of crops larger than its pages (padded): the
    inputs follow the contract (tests/test_inputs.py checks them against the pipeline's)."""
    root = tiny_folder(tmp_path / "data", n=3)
    names = build_cache(list_sources(root) + list_sources(root, held_out=True), tmp_path / "cache", progress=False)
    assert len(names) == 3
    s = Sampler(tmp_path / "cache", np.random.default_rng(0), p_draft=0.0)
    b = s.batch(3, 96)
    assert b.x.shape == (3, N_INPUT_CHANNELS, 96, 96) and b.target.shape == (3, 3, 96, 96)
    assert b.x.dtype == np.float32 and np.isfinite(b.x).all()
    assert ((b.x[:, HINT_MASK] == 0) | (b.x[:, HINT_MASK] == 1)).all()
    # Hint colour sits under hint pixels only; propagated colour only inside the propagated mask.
    assert (b.x[:, HINT_RGB] * (1 - b.x[:, HINT_MASK, None]) == 0).all()
    assert (b.x[:, PROPAGATED_RGB] * (1 - b.x[:, PROPAGATED_MASK, None]) == 0).all()
    # A crop taller than the page: below it, blank paper of the big border region, white truth.
    h = s.page(names[0]).shape[0]
    x, _, target, _ = s.sample(h + 40, name=names[0])
    assert (x[:, h:] == np.array([1, 0, 0, 1, 1] + [0] * 12, np.float32)[:, None, None]).all()
    assert (target[:, h:] == 1).all() and not (x[:, :h] == x[:, h:h + 1]).all()


def test_two_step_run_writes_loadable_safetensors(tmp_path):
    from backend.model import load_weights
    from backend.train import main

    root = tiny_folder(tmp_path / "data")
    export = tmp_path / "w.safetensors"
    rc = main([
        "--data", str(root), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
        "--steps", "2", "--batch", "2", "--crop", "64", "--threads", "1", "--adv-start", "0",
        "--sample-every", "2", "--ckpt-every", "2", "--no-progress", "--export", str(export), "--bench", "none",
    ])  # fmt: skip
    assert rc == 0
    net, meta = load_weights(export)
    assert meta["step"] == "2"
    import torch

    with torch.no_grad():
        y = net(torch.zeros(1, 17, 40, 56), torch.zeros(1, 218))
    assert y.shape == (1, 3, 40, 56)
    assert (tmp_path / "run" / "samples" / "step_000002.png").exists()
    # Resuming continues from the checkpoint.
    rc = main([
        "--data", str(root), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
        "--steps", "3", "--batch", "2", "--crop", "64", "--threads", "1", "--no-progress", "--resume", "--bench", "none",
    ])  # fmt: skip
    assert rc == 0
    assert '"step": 3' in (tmp_path / "run" / "state.json").read_text()


def test_training_ends_with_the_bench_of_its_weights(tmp_path, monkeypatch):
    import backend.bench.cli as bench_cli
    from backend.train import main

    calls = []
    monkeypatch.setattr(bench_cli, "main", lambda argv: calls.append(argv) or 0)
    root = tiny_folder(tmp_path / "data")
    rc = main([
        "--data", str(root), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
        "--steps", "1", "--batch", "2", "--crop", "64", "--threads", "1", "--no-progress",
    ])  # fmt: skip
    assert rc == 0 and len(calls) == 1
    argv = calls[0]
    assert "--quick" in argv and argv[argv.index("--weights") + 1] == str(tmp_path / "run" / "final.safetensors")
    assert argv[argv.index("--out") + 1] == str(tmp_path / "run" / "bench")
