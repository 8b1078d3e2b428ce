"""Options and the consensus run shared by the ab initio commands (abinit-homo, abinit-het)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The pose-search schedule's options (see cryoscape.inference.abinit_homo)."""
    group = parser.add_argument_group("pose search")
    group.add_argument(
        "--init-poses",
        action="store_true",
        help="start from the poses in PARTICLES: skip the searches (steps 1-4), only refine them",
    )
    group.add_argument(
        "--max-shift", type=float, default=None, metavar="PX", help="shifts searched within ±PX pixels (default D/8)"
    )
    group.add_argument(
        "--symmetry",
        default="C1",
        metavar="GROUP",
        help="point group, RELION's names: C1 (none, default), C<n>, D<n>, T, O, I (= I2), I1-I4",
    )
    group.add_argument("--restarts", type=int, default=3, help="independent starts of step 1 (default 3)")
    group.add_argument("--iterations", type=int, default=60, help="steps of each start (default 60)")
    group.add_argument("--minibatch", type=int, default=100, help="particles searched per step (default 100)")
    group.add_argument("--search-rounds", type=int, default=1, help="global searches against the half maps (default 1)")
    group.add_argument("--refine-rounds", type=int, default=6, help="rounds of local refinement (default 6)")
    group.add_argument("--search-batch", type=int, default=128, help="images searched at a time (default 128)")


def run_consensus(args: argparse.Namespace, table, out: Path, progress: bool):
    """Homogeneous ab initio of ``table`` with ``args``' schedule into the folder ``out`` (staged, all
    or nothing): map.mrc, map_half1/2.mrc, particles.star, log.csv, fsc.png. Returns the result."""
    from dataclasses import replace

    from cryoscape.analysis.fsc import plot_fsc
    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import save_star
    from cryoscape.errors import InputError
    from cryoscape.inference.abinit_homo import AbinitSettings, abinit_homo, write_rows
    from cryoscape.io.mrc import write_map
    from cryoscape.io.staging import staged_folder

    if args.init_poses and table.rotations is None:
        raise InputError(f"--init-poses: {args.particles} has no poses")
    D = table.box_size
    shift = D / 8 if args.max_shift is None else args.max_shift
    settings = AbinitSettings(restarts=args.restarts, search_rounds=args.search_rounds,
                              refine_rounds=args.refine_rounds, batch_size=args.search_batch, seed=args.seed,
                              symmetry=args.symmetry)  # fmt: skip
    settings = replace(
        settings,
        stage1=replace(settings.stage1, iterations=args.iterations, minibatch=args.minibatch,
                       search=replace(settings.stage1.search, max_shift_px=shift)),
        search=replace(settings.search, max_shift_px=shift, l_end=min(settings.search.l_end, D // 2 - 1)),
    )  # fmt: skip
    settings.check(len(table), D)
    with staged_folder(out, args.force) as staged:
        result = abinit_homo(ImageSource.from_table(table), table, settings, invert=args.invert, progress=progress,
                             init_poses=args.init_poses)  # fmt: skip
        rec = result.reconstruction
        write_map(staged / "map.mrc", rec.volume, rec.apix)
        write_map(staged / "map_half1.mrc", rec.half_maps[0], rec.apix)
        write_map(staged / "map_half2.mrc", rec.half_maps[1], rec.apix)
        save_star(staged / "particles.star", result.table)
        write_rows(staged / "log.csv", result.rows)
        plot_fsc({"half maps": rec.half_map_fsc}, staged / "fsc.png", title=Path(args.particles).name)
    print(f"half-map FSC=0.143: {rec.half_map_fsc.resolution_A(0.143):.2f} Å")
    print(f"half-map FSC=0.5: {rec.half_map_fsc.resolution_A(0.5):.2f} Å")
    print("the hand is undetermined: the map may be the mirror image (cryoscape flip-hand, cryoscape align --to REF)")
    if result.inverted:
        print("the particles were dark on light and were inverted: pass --invert to commands that read the poses")
    return result
