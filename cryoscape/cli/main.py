"""The ``cryoscape`` command: dispatches to one module per subcommand.

Each command module in ``cryoscape.cli`` has a docstring (its description), ``add_arguments(parser)``
and ``main(args)``; its one-line summary lives in ``COMMANDS`` below. A command's outputs are
published together when it succeeds and removed when it fails or is interrupted
(:func:`cryoscape.io.staging.output_transaction`), unless its module sets ``STAGED_OUTPUTS = False``
(training, whose checkpoints must appear as they are written). Modules are imported only when
their command runs (or for its ``--help``), so that ``cryoscape --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import shlex
import signal
import sys

from cryoscape import __version__

# command name -> (module, one-line help). Kept here so `cryoscape --help` imports no command module.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("cryoscape.cli.simulate", "simulate a particle stack with ground truth from maps or atomic models"),
    "backproject": (
        "cryoscape.cli.backproject",
        "reconstruct a map from particles with known poses (Fourier backprojection)",
    ),
    "fsc": ("cryoscape.cli.fsc", "Fourier shell correlation between two maps, with resolution and a plot"),
    "downsample": ("cryoscape.cli.downsample", "Fourier-crop a particle stack to a smaller box, in chunks"),
    "preprocess": ("cryoscape.cli.preprocess", "select, invert and normalize particles into a new stack"),
    "export-cryodrgn": ("cryoscape.cli.export_cryodrgn", "write cryoDRGN poses.pkl and ctf.pkl from a .star or .cs"),
    "train-nn": ("cryoscape.cli.train_nn", "homogeneous neural-field reconstruction with known poses"),
    "abinit-homo": (
        "cryoscape.cli.abinit_homo",
        "homogeneous reconstruction without poses (ab initio): a map and every particle's pose",
    ),
    "abinit-het": (
        "cryoscape.cli.abinit_het",
        "heterogeneous reconstruction without poses: consensus ab initio, rounds of VAE and search by cluster",
    ),
    "train-vae": ("cryoscape.cli.train_vae", "heterogeneous reconstruction with known poses: the cryoDRGN VAE"),
    "train-mix": (
        "cryoscape.cli.train_mix",
        "compositional and conformational heterogeneity: a mixture of neural fields with a junk class",
    ),
    "train-gmm": (
        "cryoscape.cli.train_gmm",
        "Gaussian beads from a map or an atomic model, moved per particle (e2gmm, cryoSPHERE, cryofold)",
    ),
    "eval-images": ("cryoscape.cli.eval_images", "encode particles with a trained VAE: latent means and variances"),
    "eval-vol": ("cryoscape.cli.eval_vol", "generate maps from a trained run"),
    "analyze": ("cryoscape.cli.analyze", "latent space of a VAE run: PCA, UMAP, k-means maps, PC traversals, plots"),
    "landscape": (
        "cryoscape.cli.landscape",
        "volume-space analysis: PCA and clustering of maps sampled across the latent space",
    ),
    "trajectory": (
        "cryoscape.cli.trajectory",
        "maps along a path through the data in latent space, with a ChimeraX movie script",
    ),
    "select": (
        "cryoscape.cli.select",
        "write a subset of particles (.star/.cs) by cluster, latent region or index file",
    ),
    "report": ("cryoscape.cli.report", "one self-contained HTML report of a run: interactive latents, losses, maps"),
    "align": ("cryoscape.cli.align", "superpose a map onto a reference: rotation, shift and hand, with the FSC"),
    "flip-hand": (
        "cryoscape.cli.flip_hand",
        "write the mirror image of a map (the hand of an ab initio map is undetermined)",
    ),
}

log = logging.getLogger("cryoscape")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryoscape",
        description="cryoscape: heterogeneous single-particle cryo-EM reconstruction.",
    )
    parser.add_argument("--version", action="version", version=f"cryoscape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one command (imports its module)."""
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(
        prog=f"cryoscape {name}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for torch (default: the CPUs this process may use, from its affinity and cgroup "
        "quota as SLURM and containers set them, divided among torchrun's processes on the node)",
    )
    parser.set_defaults(_run=module.main, _staged=getattr(module, "STAGED_OUTPUTS", True))
    return parser


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Console messages at the level asked for; the cryoscape logger itself keeps INFO and above, so
    that run logs written to files (e.g. RUN/run.log) are complete even with --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[console])
    logging.getLogger("cryoscape").setLevel(min(level, logging.INFO))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv)  # handles --help, --version and unknown commands
        top.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    args = command_parser(name).parse_args(rest)
    args.command_line = shlex.join(["cryoscape", *argv])
    setup_logging(args.verbose, args.quiet)
    from cryoscape.errors import CryoscapeError
    from cryoscape.io.staging import output_transaction
    from cryoscape.threads import configure_threads

    signal.signal(signal.SIGTERM, _interrupt)  # a kill cleans up as Ctrl-C does
    try:
        args.threads_note = configure_threads(args.threads)
        log.debug(args.threads_note)
        with output_transaction() if args._staged else contextlib.nullcontext():
            result = args._run(args)
    except CryoscapeError as err:
        print(f"cryoscape {name}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"cryoscape {name}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cryoscape {name}: interrupted; its unfinished outputs were removed", file=sys.stderr)
        return 130
    return int(result or 0)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
