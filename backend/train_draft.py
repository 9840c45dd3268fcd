"""Train the drafting model (backend/draft.py): a hierarchical conditional VAE of blurred colourings.

    python -m backend.train_draft --minutes 35 --out runs/draft

1. the page cache (.cache/pages-v2, see backend/data.py) is shrunk once to 128x128 ink + colour
   truth per page (runs/draft/pages128.npz); 1 page in 20 (by name hash) is held out for evaluation;
2. each step: random crop (70-100 % a side) -> 64x64, flip, sometimes a hue rotation, random hint
   dots from the truth; loss = L1(Lab) of the posterior decode + beta * KL(posterior || page prior)
   with free bits, + L1 of a prior-sample decode near the hints (so variants obey the hints);
3. evaluation on held-out pages: posterior reconstruction dE2000, mean pairwise dE2000 of 4 prior
   samples (unhinted), best-of-4 vs prior-mean dE2000.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import color
from .draft import RES, DraftModel, kl_gauss, load_draft_model, save_draft_model, torch_rgb_to_lab

ROOT = Path(__file__).resolve().parents[1]
P_INK, P_FILL = 0, 6  # planes of a cached page (backend/data.py)
PREP = 128


def safe_meta(path: str | Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.dumps(f.metadata() or {})


def held_out(name: str) -> bool:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 20 == 0


def prepare(cache: Path, out: Path) -> dict:
    """Every cached page -> 128x128 ink (1 = paper) and colour truth (colour under the lines), uint8."""
    if out.exists():
        d = np.load(out)
        return {k: d[k] for k in d.files}
    names = sorted(p.name[:-4] for p in cache.glob("*__v*.npy") if not p.name.endswith((".hist.npy", ".tmp.npy")))
    inks, gts, keep = [], [], []
    for i, n in enumerate(names):
        planes = np.load(cache / f"{n}.npy", mmap_mode="r")
        ink = cv2.resize(np.ascontiguousarray(planes[..., P_INK]), (PREP, PREP), interpolation=cv2.INTER_AREA)
        gt = cv2.resize(np.ascontiguousarray(planes[..., P_FILL : P_FILL + 3]), (PREP, PREP), interpolation=cv2.INTER_AREA)
        inks.append(ink)
        gts.append(gt)
        keep.append(n)
        if i % 200 == 0:
            print(f"prepare {i}/{len(names)}", flush=True)
    d = {"ink": np.stack(inks), "gt": np.stack(gts), "held": np.array([held_out(n) for n in keep])}
    np.savez(out, **d)
    return d



def hue_matrix(degrees: float) -> np.ndarray:
    """RGB matrix rotating hue about the gray axis in YIQ (luma kept)."""
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    t = np.radians(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]], np.float32)
    return (np.linalg.inv(yiq) @ rot @ yiq).astype(np.float32)


def hint_dots(gt: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k hint dots (sometimes 3x3 blobs) at 64x64 with the truth's colour, mostly on colourful pixels."""
    rgb, mask = np.zeros_like(gt), np.zeros(gt.shape[:2], bool)
    lab = color.rgb_to_lab(gt)
    chroma = np.hypot(lab[..., 1], lab[..., 2]).ravel()
    p = np.where(chroma > 10, 4.0, 1.0)
    for i in rng.choice(gt.shape[0] * gt.shape[1], size=k, replace=False, p=p / p.sum()):
        y, x = divmod(int(i), gt.shape[1])
        r = 1 if rng.random() < 0.3 else 0
        sl = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
        rgb[sl], mask[sl] = gt[y, x], True
    return rgb, mask


def make_batch(data: dict, idx: np.ndarray, rng: np.random.Generator, augment: bool = True, hints: int | None = None):
    """-> cond (B,5,64,64), truth rgb (B,3,64,64), ink (B,1,64,64), hint mask (B,1,64,64)."""
    conds, gts = [], []
    for i in idx:
        ink, gt = data["ink"][i], data["gt"][i]
        if augment:
            ch, cw = (int(PREP * rng.uniform(0.7, 1.0)) for _ in range(2))
            y0, x0 = int(rng.integers(0, PREP - ch + 1)), int(rng.integers(0, PREP - cw + 1))
            ink, gt = ink[y0 : y0 + ch, x0 : x0 + cw], gt[y0 : y0 + ch, x0 : x0 + cw]
        ink = cv2.resize(ink, (RES, RES), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        gt = cv2.resize(gt, (RES, RES), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if augment and rng.random() < 0.5:
            ink, gt = ink[:, ::-1], gt[:, ::-1]
        if augment and rng.random() < 0.2:
            gt = np.clip(gt @ hue_matrix(rng.uniform(40, 320)).T, 0, 1)
        k = hints if hints is not None else (0 if rng.random() < 0.35 else int(np.exp(rng.uniform(0, np.log(33)))))
        hrgb, hmask = hint_dots(gt, k, rng) if k else (np.zeros_like(gt), np.zeros((RES, RES), bool))
        c = np.concatenate([ink[None], np.moveaxis(hrgb * hmask[..., None], -1, 0), hmask[None]], 0)
        conds.append(c)
        gts.append(np.moveaxis(gt, -1, 0))
    cond = torch.from_numpy(np.ascontiguousarray(np.stack(conds), np.float32))
    gt = torch.from_numpy(np.ascontiguousarray(np.stack(gts), np.float32))
    return cond, gt, cond[:, :1], cond[:, 4:5]


def lab_l1(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Laplace negative log-likelihood (scale 5 Lab units, L weighted half), per pixel, mean over batch."""
    d = (torch_rgb_to_lab(a) - torch_rgb_to_lab(b)).abs() * torch.tensor([0.5, 1.0, 1.0]).view(1, 3, 1, 1) / 5.0
    d = d.sum(1, keepdim=True)
    return (d if w is None else d * w).mean()


def near_hints(mask: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    r = int(3 * sigma)
    g = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = (g[:, None] * g[None]).view(1, 1, 2 * r + 1, 2 * r + 1)
    return F.conv2d(mask, k, padding=r).clamp(max=1.0)


def losses(model: DraftModel, cond, gt, ink, hmask, rng_drop: torch.Tensor, beta: float = 1.0, free_bits: float = 0.1, hint_weight: float = 0.25, hint_sigma: float = 1.0):
    feats, pc, pf = model.prior(cond)
    enc_ink = torch.where(rng_drop.view(-1, 1, 1, 1), torch.ones_like(ink), ink)  # learn to encode without a page too
    qc, qf = model.posterior(gt, enc_ink)
    zc = qc[0] + (0.5 * qc[1]).exp() * torch.randn_like(qc[0])
    zf = qf[0] + (0.5 * qf[1]).exp() * torch.randn_like(qf[0])
    rec = lab_l1(model.decode(feats, zc, zf), gt)
    n_pix = RES * RES
    klc, klf = kl_gauss(qc, pc).mean(0), kl_gauss(qf, pf).mean(0)  # per dim, batch mean
    kl = (klc.clamp(min=free_bits).sum() + klf.clamp(min=free_bits).sum()) / n_pix
    # Prior samples must obey the hints (so variants agree there): only at and right next to the hints,
    # and not through the prior (a wide prior stays wide; a loss over whole regions taught the decoder
    # to ignore z, and variants all looked alike).
    # Half of them take the palette (coarse code) of another page of the batch instead: variants drawn
    # from the palette bank must obey the hints too.
    sc = pc[0].detach() + (0.5 * pc[1].detach()).exp() * torch.randn_like(pc[0])
    sc = torch.where(torch.rand(len(sc), 1) < 0.5, qc[0].detach().roll(1, 0), sc)
    sf = pf[0].detach() + (0.5 * pf[1].detach()).exp() * torch.randn_like(pf[0])
    w = near_hints(hmask, sigma=hint_sigma)
    hint = lab_l1(model.decode(feats, sc, sf), gt, w) / w.mean().clamp(min=1e-3) * (w.sum() > 0)
    loss = rec + beta * kl + hint_weight * hint
    return loss, {"rec": rec.item(), "kl_c": klc.sum().item(), "kl_f": klf.sum().item(), "hint": hint.item()}


def de2000(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return color.ciede2000(color.rgb_to_lab(a), color.rgb_to_lab(b))


@torch.no_grad()
def fill_bank(model: DraftModel, data: dict, idx: np.ndarray) -> None:
    """The posterior-mean coarse codes of the training pages (whole page, no augmentation) -> model.bank."""
    model.eval()
    codes = []
    for s in range(0, len(idx), 64):
        _, gt, ink, _ = make_batch(data, idx[s : s + 64], np.random.default_rng(0), augment=False, hints=0)
        codes.append(model.posterior(gt, ink)[0][0])
    model.bank = torch.cat(codes)


def draw_coarse(model: DraftModel, mc: torch.Tensor, lc: torch.Tensor, g: torch.Generator, bank: bool) -> torch.Tensor:
    """A batch of coarse codes as sample_latents draws them (prior, or the bank weighted by the prior)."""
    sc = (0.5 * lc).exp()
    if not bank:
        return mc + sc * torch.randn(mc.shape, generator=g)
    logp = -0.5 * (((model.bank[None] - mc[:, None]) / sc[:, None]) ** 2).sum(2) / 9.0
    return model.bank[torch.multinomial(torch.softmax(logp, 1), 1, generator=g)[:, 0]]


@torch.no_grad()
def evaluate(model: DraftModel, data: dict, idx: np.ndarray, seed: int = 0, bank: bool = False) -> dict:
    """Held-out pages at 64x64, no hints: posterior reconstruction, 4-sample diversity, best-of-4 vs prior mean;
    and with 16 hints: pairwise dE of 4 samples near hints (agreement) and their error at hint pixels."""
    model.eval()
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    out = {k: [] for k in ("rec", "pair", "best4", "mean", "pair16_near", "hint16")}
    for hints in (0, 16):
        cond, gt, ink, hmask = make_batch(data, idx, rng, augment=False, hints=hints)
        feats, (mc, lc), (mf, lf) = model.prior(cond)
        t = lambda x: x.permute(0, 2, 3, 1).numpy().astype(np.float64)
        truth = t(gt)
        samples = []
        for _ in range(4):
            zc = draw_coarse(model, mc, lc, g, bank)
            zf = mf + (0.5 * lf).exp() * torch.randn(mf.shape, generator=g)
            samples.append(t(model.decode(feats, zc, zf)))
        pair = np.mean([de2000(samples[i], samples[j]) for i in range(4) for j in range(i + 1, 4)], 0)  # B,H,W
        if hints == 0:
            (qc, _), (qf, _) = model.posterior(gt, ink)
            out["rec"].append(de2000(t(model.decode(feats, qc, qf)), truth).mean())
            errs = np.stack([de2000(s, truth).mean((1, 2)) for s in samples])  # 4,B
            out["best4"].append(errs.min(0).mean())
            out["mean"].append(de2000(t(model.decode(feats, mc, mf)), truth).mean())
            out["pair"].append(pair.mean())
        else:
            near = near_hints(hmask).numpy()[:, 0] > 0.5
            out["pair16_near"].append(pair[near].mean())
            hm = hmask.numpy()[:, 0] > 0
            out["hint16"].append(np.mean([de2000(s, truth)[hm].mean() for s in samples]))
    model.train()
    return {k: round(float(np.mean(v)), 2) for k, v in out.items()}


@torch.no_grad()
def colorizer_eval(draft_path: Path, cache: Path, pages: int = 24, seed: int = 0, coarse: str = "auto") -> dict:
    """The bar of issue 13 on held-out cache pages at 0 hints: the colorizer (backend.model) without a
    draft (today's single output) vs the best of 4 drafted variants, dE2000 to the truth; and timings."""
    from .draft import decode, load_draft_model, sample_latents
    from .model import load_weights

    net, _ = load_weights()
    net.eval()
    dm = load_draft_model(draft_path)
    names = sorted(p.name[:-4] for p in cache.glob("*__v*.npy") if not p.name.endswith((".hist.npy", ".tmp.npy")))
    names = [n for n in names if held_out(n)][:pages]
    rows, pairs, t_net, t_draft = [], [], [], []
    for n in names:
        planes = np.load(cache / f"{n}.npy")
        h, w = planes.shape[:2]
        x = np.zeros((17, h, w), np.float32)  # channel layout: backend/inputs.py (0-4 structure, 13-16 draft)
        for c in range(5):
            x[c] = planes[..., c if c < 3 else (10 if c == 3 else 11)] / 255.0
        truth = planes[..., P_FILL : P_FILL + 3].astype(np.float64) / 255.0
        g = torch.zeros(1, net.config.global_size)
        paper = x[0] > 0.5  # not ink: the bench's pixels

        def run(draft):
            xx = x.copy()
            if draft is not None:
                xx[13:16], xx[16] = np.moveaxis(draft, -1, 0), 1.0
            t = time.perf_counter()
            y = net(torch.from_numpy(xx)[None], g)[0].permute(1, 2, 0).numpy().astype(np.float64)
            t_net.append(time.perf_counter() - t)
            outs.append(y)
            return de2000(y, truth)[paper].mean()

        ink = x[0]
        t = time.perf_counter()
        zs = sample_latents(dm, ink, n=5, seed=seed, include_mean=True, coarse=coarse)
        drafts = decode(dm, ink, zs)
        t_draft.append((time.perf_counter() - t) / 5)
        outs: list[np.ndarray] = []
        rows.append([run(None), run(drafts[0])] + [run(d) for d in drafts[1:]])
        pairs.append(np.mean([de2000(outs[i], outs[j])[paper].mean() for i in range(2, 6) for j in range(i + 1, 6)]))
    r = np.array(rows)
    return {
        "pages": len(names),
        "no_draft": round(float(r[:, 0].mean()), 2),
        "mean_draft": round(float(r[:, 1].mean()), 2),
        "one_sample": round(float(r[:, 2].mean()), 2),
        "best_of_4_samples": round(float(r[:, 2:].min(1).mean()), 2),
        "best_of_4_with_mean": round(float(r[:, 1:5].min(1).mean()), 2),
        "pairwise_4_colourings": round(float(np.mean(pairs)), 2),
        "net_s": round(float(np.mean(t_net)), 3),
        "draft_s_per_variant": round(float(np.mean(t_draft)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.train_draft", description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "pages-v2"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "draft"))
    ap.add_argument("--minutes", type=float, default=35.0)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: time only)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--free-bits", type=float, default=0.1)
    ap.add_argument("--hint-weight", type=float, default=0.25)
    ap.add_argument("--hint-sigma", type=float, default=1.0, help="reach of the hint loss, 64x64 pixels")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--finish", metavar="DRAFT_WEIGHTS", help="only fill the palette bank, evaluate and save these weights to --out")
    ap.add_argument("--coarse", default="auto", choices=["auto", "prior", "bank"], help="--colorizer-eval: how variants draw the coarse level")
    ap.add_argument("--colorizer-eval", metavar="DRAFT_WEIGHTS", help="only run the colorizer bar (see colorizer_eval)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.colorizer_eval:
        print(json.dumps(colorizer_eval(Path(args.colorizer_eval), Path(args.cache), coarse=args.coarse)), flush=True)
        return 0
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare(Path(args.cache), out / "pages128.npz")
    train_idx, val_idx = np.nonzero(~data["held"])[0], np.nonzero(data["held"])[0][:64]
    print(f"pages: {len(train_idx)} train, {len(val_idx)} held out", flush=True)
    if args.finish:  # weights of a run stopped early or trained by an older script
        model = load_draft_model(args.finish)
        finish(model, data, train_idx, val_idx, out, json.loads(json.loads(safe_meta(args.finish)).get("meta", "{}") or "{}"))
        return 0
    model = DraftModel()
    print(f"params: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    t0, step, budget = time.time(), 0, args.minutes * 60
    while (time.time() - t0 < budget) and (args.steps == 0 or step < args.steps):
        frac = min(1.0, (time.time() - t0) / budget) if args.steps == 0 else step / args.steps
        lr = args.lr * (min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * frac)))  # warmup, cosine
        for gr in opt.param_groups:
            gr["lr"] = lr
        beta = args.beta * min(1.0, 0.2 + step / 500)  # short KL warm-up
        cond, gt, ink, hmask = make_batch(data, rng.choice(train_idx, args.batch), rng)
        drop = torch.from_numpy(rng.random(args.batch) < 0.25)
        loss, logs = losses(model, cond, gt, ink, hmask, drop, beta, args.free_bits, args.hint_weight, args.hint_sigma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            print(f"step {step} t {time.time() - t0:.0f}s lr {lr:.2e} loss {loss.item():.3f} " + " ".join(f"{k} {v:.3f}" for k, v in logs.items()), flush=True)
        if step % args.eval_every == 0:
            print("eval", json.dumps(evaluate(model, data, val_idx)), flush=True)
            save_draft_model(model, out / "draft.safetensors", {"step": step})
    finish(model, data, train_idx, val_idx, out, {"step": step, "minutes": round((time.time() - t0) / 60, 1), "args": vars(args)})
    return 0


def finish(model: DraftModel, data: dict, train_idx: np.ndarray, val_idx: np.ndarray, out: Path, meta: dict) -> None:
    """Fill the palette bank, evaluate both ways of drawing the coarse level, save weights + json."""
    fill_bank(model, data, train_idx)
    meta = dict(meta, eval_prior=evaluate(model, data, val_idx), eval_bank=evaluate(model, data, val_idx, bank=True))
    print("final", json.dumps(meta), flush=True)
    save_draft_model(model, out / "draft.safetensors", meta)
    (out / "draft.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
