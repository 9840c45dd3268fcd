"""`python -m backend colorize|serve|batch|bench|train` — one CLI over the pipeline."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .colour_cli import add_colour_flags, load_panels, sources_from_args
from .options import add_cli_flags, from_cli
from .request import ColorizeOptions, ColorizeRequest, RequestError

def colorize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend colorize", description="Colorize one B/W page.")
    p.add_argument("ink", type=Path, help="the B/W page (L, LA, RGB, RGBA; 1, 8 or 16 bit)")
    p.add_argument("--hints", type=Path, help="RGBA hint layer of the same size; alpha > 0 marks a hint")
    p.add_argument(
        "--draft", type=Path, metavar="DRAFT.png",
        help="a coloring draft (RGBA of the same size, alpha > 0 = painted; a painted Draft layer or a saved variant): "
        "the colours the page should roughly follow",
    )
    add_colour_flags(p)
    p.add_argument(
        "--panels", metavar="auto|FILE.json",
        help="colorize panel by panel: 'auto' detects the panels; a panels file (python -m backend panels PAGE --json) "
        "may give each panel its own references and palettes (the others use the page's)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("-o", "--output", type=Path, required=True, help="RGB result: colour under the ink")
    p.add_argument(
        "--color-layer", type=Path,
        help="also write the colour layer alone (RGBA, for Multiply under the ink); with --variants N, variant i is "
        "also written as NAME_vI.png next to -o (and to --color-layer)",
    )
    add_cli_flags(p, ColorizeOptions)
    return p


def variant_path(path: Path, i: int) -> Path:
    """OUT.png -> OUT_v2.png for variant 2 (variant 1 is OUT.png itself)."""
    return path if i == 1 else path.with_name(f"{path.stem}_v{i}{path.suffix}")


def cmd_colorize(argv: list[str]) -> int:
    p = colorize_parser()
    args = p.parse_args(argv)

    from PIL import Image

    from .imageio import ImageError, check_output_file, load_hints, load_ink
    from .pipeline import colorize, get_model

    t0 = time.perf_counter()
    try:
        # Before the work: a bad output path must not cost a whole colorization and then a traceback.
        check_output_file(args.output, "-o")
        if args.color_layer:
            check_output_file(args.color_layer, "--color-layer", mode="RGBA")
        ink = load_ink(args.ink)
        colours = sources_from_args(args.reference, args.palette)
        request = ColorizeRequest(
            ink=ink,
            hints=load_hints(args.hints) if args.hints else None,
            draft=load_hints(args.draft, "draft") if args.draft else None,
            references=list(colours.references),
            reference_weights=list(colours.weights) if colours.weights is not None else None,
            palettes=list(colours.palettes),
            panels=load_panels(args.panels, ink) if args.panels else None,
            options=from_cli(ColorizeOptions, args),
        )
        model = get_model(args.device)
        result = colorize(request, model=model)
    except (ImageError, RequestError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        outputs = [(result.composite, args.output), (result.color_layer, args.color_layer)]
        composites = result.variant_composites() if result.variants else []
        for i, (layer, composite) in enumerate(zip(result.variants, composites), start=2):
            outputs += [(composite, variant_path(args.output, i))]
            if args.color_layer is not None:
                outputs += [(layer, variant_path(args.color_layer, i))]
        for arr, path in outputs:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(path)
    except (OSError, ValueError) as exc:
        print(f"error: cannot write the result: {exc}", file=sys.stderr)
        return 2
    total = time.perf_counter() - t0
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
    more = f" and {len(result.variants)} variant(s) {variant_path(args.output, 2).name}..." if result.variants else ""
    print(f"wrote {args.output}{more} ({request.ink.shape[1]}x{request.ink.shape[0]}) in {total:.2f}s [{stages}; model {result.model_version} on {model.device}]")
    return 0


def cmd_serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m backend serve", description="Run the HTTP API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="serve clients on other machines (needed with a non-loopback --host); the token still applies",
    )
    p.add_argument("--max-body-mb", type=int, default=400, help="largest request body accepted (MB)")
    p.add_argument("--queue", type=int, default=4, help="jobs that may wait behind the running one before 'busy'")
    args = p.parse_args(argv)
    import ipaddress

    loopback = args.host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        pass
    if not loopback and not args.allow_remote:
        p.error(f"--host {args.host} is not a loopback address; add --allow-remote if you really mean it")
    if not loopback:
        print(f"WARNING: serving on {args.host}: other machines on the network can reach this server", file=sys.stderr)
    if args.max_body_mb < 1 or args.queue < 0:
        p.error("--max-body-mb must be at least 1 and --queue at least 0")
    from .config import TokenFileError
    from .server import serve

    try:
        serve(
            args.host, args.port, args.device, allow_remote=not loopback,
            max_body_bytes=args.max_body_mb * 1024 * 1024, max_waiting=args.queue,
        )
    except (TokenFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_panels(argv: list[str]) -> int:
    from .panels import add_cli, run_cli

    p = argparse.ArgumentParser(prog="python -m backend")
    add_cli(p.add_subparsers())
    return run_cli(p.parse_args(["panels", *argv]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "colorize": cmd_colorize, "serve": cmd_serve, "batch": None, "bench": None, "train": None,
        "panels": cmd_panels, "palette": None,
    }
    if not argv or argv[0] not in commands:
        print("usage: python -m backend {colorize,serve,batch,bench,train,panels,palette} ...", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name == "batch":
        from .batch import main as batch_main

        return batch_main(rest)
    if name == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if name == "palette":
        from .colour_cli import cmd_palette

        return cmd_palette(rest)
    if name == "train":
        from .train import main as train_main

        return train_main(rest)
    return commands[name](rest)  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main())
