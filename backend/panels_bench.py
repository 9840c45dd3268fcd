"""Panel detection: the bar on hand-labelled pages, and contact sheets for checking by eye.

    python -m backend.panels_bench score FIXTURE.json PAGES_DIR
        per page: true and detected panel counts, mean best-match IoU of the true panels
    python -m backend.panels_bench sheet OUT.png PAGE... [--cols 5] [--height 300] [--truth FIXTURE.json]
        detected polygons (numbered in reading order) drawn over downscaled pages; with --truth,
        the true polygons too (thin green)

IoU is computed on the rasterised polygons at full resolution.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .panels import detect_panels

COLORS = [(0, 0, 255), (0, 160, 0), (255, 0, 0), (0, 140, 255), (200, 0, 200), (160, 160, 0), (0, 200, 200)]


def _load(path: Path) -> np.ndarray:
    from .imageio import load_ink

    return load_ink(path, "page")


def _raster(poly, shape) -> np.ndarray:  # type: ignore[no-untyped-def]
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.array(poly, np.int32)], 1)
    return m.astype(bool)


def best_match_iou(truth: list, found: list, shape: tuple[int, int]) -> list[float]:
    """For each true polygon, the IoU with the detected polygon that overlaps it best."""
    fm = [_raster(p, shape) for p in found]
    out = []
    for t in truth:
        tm = _raster(t, shape)
        out.append(max((float((tm & m).sum() / max(1, (tm | m).sum())) for m in fm), default=0.0))
    return out


def score(fixture: Path, pages: Path) -> dict:
    fx = json.loads(fixture.read_text(encoding="utf-8"))
    rows, ious = [], []
    for name, page in fx["pages"].items():
        img = _load(pages / name)
        found = detect_panels(img)
        best = best_match_iou(page["panels"], [p.polygon for p in found], img.shape)
        ious += best
        rows.append({"page": name, "true": len(page["panels"]), "found": len(found), "iou": float(np.mean(best))})
    equal = sum(r["true"] == r["found"] for r in rows)
    return {"pages": rows, "count_equal": equal, "n": len(rows), "mean_iou": float(np.mean(ious))}


def sheet(pages: list[Path], out: Path, cols: int = 5, height: int = 300, truth: dict | None = None) -> None:
    from PIL import Image

    tiles = []
    for path in pages:
        img = _load(path)
        found = detect_panels(img)
        h, w = img.shape
        s = height / h
        tile = cv2.cvtColor((cv2.resize(img, (round(w * s), height), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        for t in (truth or {}).get(path.name, {}).get("panels", []):
            cv2.polylines(tile, [(np.array(t) * s).astype(np.int32)], True, (0, 200, 0), 1)
        for i, p in enumerate(found):
            pts = (np.array(p.polygon) * s).astype(np.int32)
            c = COLORS[i % len(COLORS)]
            cv2.polylines(tile, [pts], True, c, 2)
            cx, cy = pts.mean(axis=0).astype(int)
            cv2.putText(tile, str(i + 1), (int(cx) - 7, int(cy) + 7), cv2.FONT_HERSHEY_SIMPLEX, 0.7, c, 2)
        label = f"{path.stem[-3:]} n={len(found)}"
        cv2.putText(tile, label, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 3)
        cv2.putText(tile, label, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 200), 1)
        tiles.append(tile)
    tw = max(t.shape[1] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 2, 2, 2, 2 + tw - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)) for t in tiles]
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    rgb = Image.fromarray(cv2.cvtColor(grid, cv2.COLOR_BGR2RGB))
    rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.panels_bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("fixture", type=Path)
    s.add_argument("pages", type=Path)
    s.add_argument("--json", action="store_true")
    c = sub.add_parser("sheet")
    c.add_argument("out", type=Path)
    c.add_argument("page", type=Path, nargs="+")
    c.add_argument("--cols", type=int, default=5)
    c.add_argument("--height", type=int, default=300)
    c.add_argument("--truth", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "score":
        r = score(a.fixture, a.pages)
        if a.json:
            print(json.dumps(r, indent=1))
            return 0
        print("| page | true | detected | mean IoU |\n|---|---|---|---|")
        for row in r["pages"]:
            print(f"| {row['page']} | {row['true']} | {row['found']} | {row['iou']:.3f} |")
        print(f"\ncount equal on {r['count_equal']}/{r['n']} pages; mean best-match IoU of true panels {r['mean_iou']:.3f}")
        return 0
    truth = json.loads(a.truth.read_text(encoding="utf-8"))["pages"] if a.truth else None
    sheet(a.page, a.out, a.cols, a.height, truth)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
