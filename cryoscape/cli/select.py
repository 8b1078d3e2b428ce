"""Write a subset of particles, chosen by cluster, by a region of the latent space, or by an index
file, as a particle file that RELION or cryoSPARC opens: a .star keeps every block and column of the
input .star (optics groups included), a .cs every field of the input .cs. Also writes the 0-based
indices of the chosen particles (.npy), for --ind of train-vae and the other commands.

Criteria are combined (a particle must meet all); --invert takes the particles that do not.
Labels and coordinates refer to the particles of the run; if the run was trained with --ind, give
that file as --run-ind so that they are mapped back to rows of PARTICLES.

Examples:
  cryoscape select sim/particles.star --labels sim/vae/analysis/kmeans_labels.npy --keep 0,3 -o sim/subset.star
  cryoscape select sim/particles.star --coords sim/vae/analysis/umap.npy --polygon 1,1,4,1,4,5 -o sim/blob.star
  cryoscape select sim/particles.star --coords sim/vae/analysis/z_pca.npy --range 1:-2:0.5 --invert -o sim/rest.star
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_float_list, parse_int_list, parse_range


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "particles", metavar="PARTICLES", help="the particle file (.star or .cs) the run was trained on"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="SUBSET",
        help="subset particle file, of the same type as PARTICLES (.star or .cs)",
    )
    parser.add_argument(
        "--labels", default=None, metavar="LABELS.npy", help="one label per particle (e.g. kmeans_labels.npy)"
    )
    parser.add_argument("--keep", type=parse_int_list, default=None, metavar="L1,L2,...", help="labels to keep")
    parser.add_argument(
        "--ind",
        default=None,
        metavar="INDEX_FILE",
        help="0-based rows of PARTICLES to keep (.npy, .txt or cryoDRGN .pkl)",
    )
    parser.add_argument(
        "--coords",
        default=None,
        metavar="COORDS.npy",
        help="per-particle coordinates (N, d): umap.npy, z_pca.npy or z.npy of a run",
    )
    parser.add_argument(
        "--polygon",
        type=parse_float_list,
        default=None,
        metavar="X1,Y1,X2,Y2,...",
        help="keep particles whose first two coordinates lie inside this polygon (3+ vertices); "
        "write --polygon=-1,2,... when the first number is negative",
    )
    parser.add_argument(
        "--range",
        type=parse_range,
        action="append",
        default=[],
        metavar="DIM:MIN:MAX",
        help="keep particles with MIN <= coordinate DIM (from 1) <= MAX; may be repeated",
    )
    parser.add_argument(
        "--run-ind",
        default=None,
        metavar="INDEX_FILE",
        help="the --ind file the run was trained with (labels and coordinates follow its order)",
    )
    parser.add_argument("--invert", action="store_true", help="keep the particles that do not match instead")
    parser.add_argument(
        "--ind-out",
        default=None,
        metavar="IND.npy",
        help="where to write the chosen indices (default: SUBSET with _ind.npy for its suffix)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.analysis import selection
    from cryoscape.errors import InputError
    from cryoscape.io.cs import read_cs, write_cs_subset
    from cryoscape.io.paths import check_input, check_output
    from cryoscape.io.selection import read_selection
    from cryoscape.io.staging import staged_file
    from cryoscape.io.star import read_star, write_star_subset

    log = logging.getLogger("cryoscape")
    source, output = check_input(args.particles, "particle file"), Path(args.output)
    kind = source.suffix.lower()
    if kind not in (".star", ".cs"):
        raise InputError(f"select reads a .star or .cs particle file, got {source.name}")
    if output.suffix.lower() != kind:
        raise InputError(f"the subset must be a {kind} file like the input, got {output.name}")
    if (args.labels is None) != (args.keep is None):
        raise InputError("--labels and --keep go together")
    if (args.polygon is not None or args.range) and args.coords is None:
        raise InputError("--polygon and --range need --coords")
    if args.polygon is not None and len(args.polygon) % 2:
        raise InputError("--polygon takes pairs of numbers X,Y")
    ind_out = Path(args.ind_out) if args.ind_out else output.with_name(output.stem + "_ind.npy")
    for path in (output, ind_out):
        check_output(path, args.force)
    n = len(read_star(source)[0]) if kind == ".star" else len(read_cs(source))
    rows = read_selection(args.run_ind, n) if args.run_ind else np.arange(n)

    def per_run(values: np.ndarray, what: str) -> np.ndarray:
        if len(values) != len(rows):
            raise InputError(
                f"{what} has {len(values)} entries, but the run has {len(rows)} particles"
                + ("" if args.run_ind else " (was it trained with --ind? give --run-ind)")
            )
        return values

    def on_rows(mask: np.ndarray) -> np.ndarray:
        return selection.by_index(rows[mask], n)

    masks = []
    if args.labels is not None:
        labels = per_run(np.load(check_input(args.labels, "label file"), allow_pickle=False).ravel(), args.labels)
        masks.append(on_rows(selection.by_labels(labels, args.keep)))
    if args.coords is not None:
        coords = per_run(np.load(check_input(args.coords, "coordinate file"), allow_pickle=False), args.coords)
        coords = coords.reshape(len(coords), -1)
        if args.polygon is not None:
            masks.append(on_rows(selection.in_polygon(coords, np.reshape(args.polygon, (-1, 2)))))
        for column, low, high in args.range:
            masks.append(on_rows(selection.in_range(coords, column, low, high)))
    if args.ind is not None:
        masks.append(selection.by_index(read_selection(args.ind, n), n))
    chosen = selection.combine(masks, n, args.invert, universe=selection.by_index(rows, n))
    (write_star_subset if kind == ".star" else write_cs_subset)(source, chosen, output, force=args.force)
    with staged_file(ind_out, args.force) as staged:
        np.save(staged, chosen)
    log.info(
        "read %d particles from %s; wrote %d (%.1f%%) to %s and their indices to %s",
        n,
        source,
        len(chosen),
        100 * len(chosen) / n,
        output,
        ind_out,
    )
    return 0
