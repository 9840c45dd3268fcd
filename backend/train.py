"""Train the colorizer on synthetic manga made from colour art.

    python -m backend train --out runs/r1 --minutes 60 --export backend/weights/mangacolor.safetensors
    torchrun --nproc_per_node=4 -m backend.train --out runs/r1 --device cuda --steps 20000

A short linear script (nanoGPT style): arguments -> page cache (built once, see data.py) ->
model + PatchGAN discriminator -> loop (sample batch (sampler.py), losses, step, log, sample
sheet, checkpoint) -> export safetensors. Losses:
- L1 in CIE Lab (kornia) against the ground truth (colour under thin lines filled in), weighted
  down on ink pixels (their colour is hidden by Multiply) and up on hint pixels and on regions
  a hint was propagated over (hints must be obeyed);
- hinge adversarial loss from a spectrally normalised PatchGAN on (ink, colour), small weight,
  after a warm-up, against the grey average that L1 alone drifts to.
No classification head (the data has no labels) and no perceptual loss (no pretrained feature
network can be had offline).
The learning rate follows a cosine over max(step / steps, elapsed / minutes), so a run with a
time budget still ends annealed. Checkpoints (run dir): last.safetensors (generator),
disc.safetensors, optim.pt (optimizer states, torch.save), state.json; `--resume` continues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import CACHE_VERSION, build_cache, cached_pages, default_data_root, list_sources
from .inputs import HINT_MASK, HINT_RGB, INK
from .model import ColorUNet, ModelConfig, init_from, save_weights
from .sampler import Sampler

REPO = Path(__file__).resolve().parents[1]
LAB_SCALE = (100.0, 100.0, 100.0)  # L, a, b -> roughly unit range


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m backend train", description="Train the MangaColor colorizer.")
    ap.add_argument("--data", default=str(default_data_root()), help="folder of colour pictures (default: shared/data)")
    ap.add_argument("--cache", default=str(REPO / ".cache" / f"pages-{CACHE_VERSION}"), help="page cache folder")
    ap.add_argument("--cache-workers", type=int, default=1)
    ap.add_argument("--no-build", action="store_true", help="train on the pages already cached (another process may still be adding some)")
    ap.add_argument("--max-pages", type=int, default=None, help="use at most this many cached pages")
    ap.add_argument("--out", default=str(REPO / "runs" / "default"), help="run folder")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=None, help="wall-time budget; the run stops (annealed) when it is spent")
    ap.add_argument("--batch", type=int, default=8, help="per process")
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--widths", default="16,32,64,96,128")
    ap.add_argument("--hint-weight", type=float, default=20.0, help="extra loss weight on hint pixels")
    ap.add_argument("--prop-weight", type=float, default=1.0, help="extra loss weight on propagated-hint regions")
    ap.add_argument("--colourful", type=float, default=0.0, help="weight of a one-sided colourfulness loss (output less colourful than 0.8 x truth)")
    ap.add_argument("--p-reference", type=float, default=0.6, help="share of samples given a reference")
    ap.add_argument("--p-recolour", type=float, default=0.4, help="share of referenced samples recoloured (hue rotation) so only the reference tells the colours")
    ap.add_argument("--p-balloon", type=float, default=0.3, help="share of samples given 1-2 synthetic speech balloons (white, lettered)")
    ap.add_argument("--p-gaps", type=float, default=0.0, help="share of samples whose line art gets random small gaps (open outlines)")
    ap.add_argument("--p-draft", type=float, default=0.12, help="share of samples given a colouring draft")
    ap.add_argument("--p-model-draft", type=float, default=0.0,
                    help="share of the drafts made by the drafting model (--draft-model) instead of the blurred truth (issue 13)")
    ap.add_argument("--draft-model", default=None, help="drafting model weights (default backend/weights/draft.safetensors)")
    ap.add_argument("--white-weight", type=float, default=1.0, help="loss weight of pixels white in the truth and blank on the page (keeps paper white)")
    ap.add_argument("--adv", type=float, default=0.01, help="adversarial loss weight (0 = off)")
    ap.add_argument("--adv-start", type=float, default=0.25, help="share of the run before the adversarial loss starts")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores / processes; use 1 on a busy shared CPU)")
    ap.add_argument("--amp", default="bf16", choices=["bf16", "none"], help="bfloat16 autocast for the networks (losses stay float32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    ap.add_argument("--init", default=None, help="start the generator from these safetensors weights")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--sample-every", type=int, default=250)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--export", default=None, help="write the final generator here (safetensors)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--bench", choices=["quick", "full", "none"], default="quick",
                    help="after training, bench the final weights against the baselines into RUN_DIR/bench (full: the default set, ~20 min on 2 CPU cores)")
    return ap.parse_args(argv)


def _draft_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The drafting model the sampler draws drafts from (issue 13), or None."""
    if args.p_model_draft <= 0:
        return None
    from .draft import load_draft_model

    return load_draft_model(args.draft_model)


class PatchDiscriminator(nn.Module):
    """Spectrally normalised PatchGAN on (ink, colour): ~70 px receptive field per logit."""

    def __init__(self, cin: int = 4, width: int = 32):
        super().__init__()
        sn = nn.utils.spectral_norm
        w = width
        self.net = nn.Sequential(
            sn(nn.Conv2d(cin, w, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(4 * w, 4 * w, 3, 1, 1)), nn.LeakyReLU(0.2, True),
            sn(nn.Conv2d(4 * w, 1, 3, 1, 1)),
        )  # fmt: skip

    def forward(self, ink: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([ink * 2 - 1, rgb * 2 - 1], 1))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    import kornia

    lab = kornia.color.rgb_to_lab(rgb.clamp(0, 1))
    scale = torch.tensor(LAB_SCALE, device=rgb.device, dtype=rgb.dtype)[None, :, None, None]
    return lab / scale


def lab_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    d = (rgb_to_lab(pred) - rgb_to_lab(target)).abs().sum(1, keepdim=True)
    return (d * weight).sum() / weight.sum().clamp_min(1e-6)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk colourfulness per image (0..255 scale / 100), differentiable."""
    x = rgb.flatten(2) * 255.0
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    spread = torch.sqrt(rg.var(1) + yb.var(1) + 1e-6)
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2 + 1e-6)
    return (spread + 0.3 * mean) / 100.0


def lr_at(progress: float, step: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def sample_sheet(path: Path, batch, pred: torch.Tensor) -> None:
    """Rows of ink | hints (on dimmed ink) | output (multiplied by ink) | ground truth."""
    from PIL import Image

    x = batch.x
    rows = []
    for i in range(x.shape[0]):
        ink = np.repeat(x[i, INK][..., None], 3, -1)
        hm = x[i, HINT_MASK][..., None]
        hints = np.moveaxis(x[i, HINT_RGB], 0, -1) * hm + (0.35 + 0.4 * ink) * (1 - hm)
        hints = np.maximum(hints, cv2_dilate(x[i, HINT_RGB], x[i, HINT_MASK]))
        out = pred[i].detach().float().cpu().permute(1, 2, 0).numpy() * ink
        gt = np.moveaxis(batch.target[i], 0, -1) * ink
        rows.append(np.concatenate([ink, hints, out, gt], 1))
    img = np.clip(np.concatenate(rows, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def cv2_dilate(rgb_planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hint dots made visible (3x3) for the sample sheet."""
    import cv2

    m = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    c = np.stack([cv2.dilate(p * mask, np.ones((3, 3), np.float32)) for p in rgb_planes], -1)
    return c * m[..., None]


def main(argv: list[str] | None = None) -> int:
    import sys

    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    t_start = time.time()

    # ---- processes, device, seeds
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    if ddp:
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) // world))
    torch.manual_seed(args.seed + rank)
    rng = np.random.default_rng([args.seed, rank])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # ---- data: the page cache is built once (rank 0), then sampled cheaply every step
    if master and not args.no_build:
        have = cached_pages(args.cache)
        if args.max_pages is None or len(have) < args.max_pages:
            sources = list_sources(args.data)
            if not sources:
                print(f"error: no training pictures under {args.data}", file=sys.stderr)
                return 2
            if args.max_pages is not None:
                pick = np.random.default_rng(args.seed).permutation(len(sources))[: max(0, args.max_pages - len(have))]
                sources = [sources[i] for i in sorted(pick)]
            build_cache(sources, args.cache, workers=args.cache_workers, seed=args.seed, progress=not args.no_progress)
    if ddp:
        dist.barrier()
    names = cached_pages(args.cache)
    if args.max_pages is not None:
        names = [names[i] for i in sorted(np.random.default_rng(args.seed).permutation(len(names))[: args.max_pages])]
    sampler = Sampler(
        args.cache, rng, names, p_reference=args.p_reference, p_recolour=args.p_recolour, p_balloon=args.p_balloon,
        p_gaps=args.p_gaps, white_weight=args.white_weight, p_draft=args.p_draft,
        p_model_draft=args.p_model_draft, draft_model=_draft_model(args),
    )
    sheet_batch = Sampler(args.cache, np.random.default_rng(1234), names).batch(6, args.crop)

    # ---- model, discriminator, optimizers
    config = ModelConfig(widths=tuple(int(w) for w in args.widths.split(",")))
    net = ColorUNet(config).to(device)
    with torch.no_grad():  # colour starts near paper white (most pixels of a page are paper);
        net.head.bias[:3].fill_(2.5)  # the hint gate's shade/gate outputs (model.py) keep their neutral 0
    if args.init:
        fresh = init_from(net, Path(args.init))
        if master:
            print(f"started from {args.init}" + (f"; new: {', '.join(sorted({n.split('.')[0] for n in fresh}))}" if fresh else ""))
    disc = PatchDiscriminator().to(device)
    opt_g = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr * 0.2, betas=(0.5, 0.99))
    step, elapsed_before = 0, 0.0
    if args.resume and (out / "state.json").exists():
        from safetensors.torch import load_file

        state = json.loads((out / "state.json").read_text())
        net.load_state_dict(load_file(str(out / "last.safetensors"), device=str(device)))
        disc.load_state_dict(load_file(str(out / "disc.safetensors"), device=str(device)))
        opt = torch.load(out / "optim.pt", map_location=device, weights_only=True)
        opt_g.load_state_dict(opt["g"])
        opt_d.load_state_dict(opt["d"])
        step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
        rng = np.random.default_rng([args.seed, rank, step])
        sampler.rng = rng
        if master:
            print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)")
    model_g, model_d = net, disc
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model_g = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
        model_d = DDP(disc, device_ids=[device.index] if device.type == "cuda" else None)
    if master:
        n_params = sum(p.numel() for p in net.parameters())
        print(f"pages {len(names)} | params {n_params / 1e6:.2f}M | device {device} | world {world} | batch {args.batch} x {args.crop}px")
        (out / "args.json").write_text(json.dumps(vars(args), indent=1))

    def save_checkpoint() -> None:
        from safetensors.torch import save_file

        save_weights(net, out / "last.safetensors", {"name": "mangacolor", "step": str(step)})
        save_file({k: v.detach().cpu().contiguous() for k, v in disc.state_dict().items()}, str(out / "disc.safetensors"))
        torch.save({"g": opt_g.state_dict(), "d": opt_d.state_dict()}, out / "optim.pt")
        (out / "state.json").write_text(json.dumps({"step": step, "elapsed_s": elapsed_before + time.time() - t_loop}))

    def to_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device, non_blocking=True)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16")

    # ---- loop
    from tqdm import tqdm

    budget = args.minutes * 60 if args.minutes else None
    bar = tqdm(total=args.steps, initial=step, disable=not master or args.no_progress, dynamic_ncols=True)
    t_loop = time.time()
    losses: dict[str, float] = {}
    log_path = out / "log.jsonl"
    stop = False
    while step < args.steps and not stop:
        elapsed = elapsed_before + time.time() - t_loop
        progress = max(step / args.steps, elapsed / budget if budget else 0.0)
        lr = lr_at(progress, step, args.lr, args.warmup)
        for gr in opt_g.param_groups:
            gr["lr"] = lr
        for gr in opt_d.param_groups:
            gr["lr"] = lr * 0.2
        if args.max_pages is None and step % 200 == 0 and step > 0:
            sampler.refresh()  # a cache still being built elsewhere keeps growing
        b = sampler.batch(args.batch, args.crop)
        x, g, target, weight = to_t(b.x), to_t(b.g), to_t(b.target), to_t(b.weight)
        hint, prop = to_t(b.hint), to_t(b.prop)
        ink = x[:, INK : INK + 1]
        # Loss weights: hint pixels (and their 3x3 neighbourhood) dominate; propagated regions count more.
        hint_near = F.max_pool2d(hint, 3, 1, 1)
        w = weight * (1 + args.prop_weight * prop) + args.hint_weight * hint_near
        with autocast():
            pred = model_g(x, g).float()
        l_lab = lab_l1(pred, target, w)
        use_adv = args.adv > 0 and progress >= args.adv_start
        l_adv = torch.zeros((), device=device)
        if use_adv:
            with autocast():
                l_adv = -model_d(ink, pred).float().mean()
        l_col = torch.zeros((), device=device)
        if args.colourful > 0:  # what the user sees is colour x ink; keep it near the truth's colourfulness
            l_col = F.relu(0.8 * colourfulness(target * ink) - colourfulness(pred * ink)).mean()
        loss = l_lab + args.adv * l_adv + args.colourful * l_col
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt_g.step()
        l_d = torch.zeros((), device=device)
        if args.adv > 0 and progress >= args.adv_start * 0.8:  # D starts a little before G listens to it
            with autocast():
                d_real = model_d(ink, target).float()
                d_fake = model_d(ink, pred.detach()).float()
            l_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()
        step += 1
        for k, v in (("lab", l_lab), ("adv", l_adv), ("d", l_d), ("col", l_col)):
            fv = float(v.detach())
            losses[k] = 0.9 * losses.get(k, fv) + 0.1 * fv
        if master:
            bar.update()
            if step % args.log_every == 0:
                bar.set_postfix(lab=f"{losses['lab']:.4f}", col=f"{losses['col']:.3f}", adv=f"{losses['adv']:.3f}", d=f"{losses['d']:.3f}", lr=f"{lr:.1e}")
                with open(log_path, "a") as f:
                    f.write(json.dumps({"step": step, "t": round(elapsed, 1), "lr": lr, **{k: round(v, 5) for k, v in losses.items()}}) + "\n")
            if step % args.sample_every == 0:
                net.eval()
                with torch.no_grad():
                    p = net(to_t(sheet_batch.x), to_t(sheet_batch.g))
                net.train()
                sample_sheet(out / "samples" / f"step_{step:06d}.png", sheet_batch, p)
            if step % args.ckpt_every == 0:
                save_checkpoint()
        if budget is not None and elapsed_before + time.time() - t_loop >= budget:
            stop = True
        if ddp:  # every rank stops together
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
    bar.close()

    # ---- final checkpoint and export
    if master:
        save_checkpoint()
        meta = {
            "name": "mangacolor",
            "step": str(step),
            "train_minutes": f"{(elapsed_before + time.time() - t_loop) / 60:.1f}",
            "pages": str(len(names)),
            "recipe": f"batch {args.batch * world} x {args.crop}px, lr {args.lr}, adv {args.adv}, seed {args.seed}",
        }
        save_weights(net, out / "final.safetensors", meta)
        if args.export:
            Path(args.export).parent.mkdir(parents=True, exist_ok=True)
            save_weights(net, Path(args.export), meta)
        print(json.dumps({"step": step, "minutes": round((time.time() - t_start) / 60, 2), "out": str(out), "export": args.export}))
    if ddp:
        dist.destroy_process_group()
    if master and args.bench != "none":
        from .bench.cli import main as bench_main

        bench_args = ["--weights", str(out / "final.safetensors"), "--out", str(out / "bench"), "--no-images", "--device", args.device]
        return bench_main(bench_args + (["--quick"] if args.bench == "quick" else []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
