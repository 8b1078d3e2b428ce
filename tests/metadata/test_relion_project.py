"""A RELION project's particle file names its stacks relative to the project folder
(``Refine3D/job010/run_data.star`` holds ``…@Extract/job005/Movies/mic001.mrcs``): cryoscape reads it
from any working directory, and `select` writes subsets whose image paths still resolve, unchanged
inside the project and absolute outside it (issue 11, item 1). The project is the real-shaped one of
real_project.py (200 stacks, two optics groups)."""

from pathlib import Path

import numpy as np

from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles
from cryoscape.io.star import read_star


def test_project_relative_paths_are_found_from_anywhere(real_project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the project folder: found from the folders above the star
    table = load_particles(real_project.star)
    assert len(table) == real_project.n
    assert set(table.image_paths) == {str(p.resolve()) for p in real_project.stacks}


def test_select_keeps_project_paths_inside_the_project_and_absolute_outside(real_project, monkeypatch, tmp_path):
    project = real_project.root
    monkeypatch.chdir(project)
    np.save(tmp_path / "labels.npy", real_project.optics_group)
    inside = project / "Select/job020/particles.star"
    outside = tmp_path / "elsewhere/subset.star"
    for output in (inside, outside):
        args = ["select", "Refine3D/job010/run_data.star", "--labels", str(tmp_path / "labels.npy"), "--keep", "1"]
        assert main([*args, "-o", str(output), "-q"]) == 0
    full = load_particles(real_project.star)
    kept = full.subset(np.flatnonzero(real_project.optics_group == 1))
    stacks = {str(Path(p).relative_to(project.resolve())) for p in kept.image_paths}
    names = read_star(inside)[0]["rlnImageName"].str.partition("@")[2]
    assert set(names) == stacks  # as RELION wrote them
    names = read_star(outside)[0]["rlnImageName"].str.partition("@")[2]
    assert set(names) == {str(project / s) for s in stacks}
    monkeypatch.chdir(tmp_path)
    for output in (inside, outside):
        subset = load_particles(output)
        assert list(subset.image_paths) == list(kept.image_paths)
        assert subset.image_indices.tolist() == kept.image_indices.tolist()


def test_a_value_that_is_not_a_number_is_named(real_project, capsys, tmp_path):
    project = real_project.root
    star = real_project.star.read_text()
    lines = star.splitlines()
    particles_block = lines.index("data_particles")
    header = [line for line in lines[particles_block:] if line.startswith("_rln")]
    column = next(i for i, line in enumerate(header) if line.split()[0] == "_rlnAngleRot")
    first_row = next(i for i, line in enumerate(lines) if "@Extract" in line)
    values = lines[first_row].split()
    values[column] = "abc"
    lines[first_row] = " ".join(values)
    bad = project / "Refine3D/job010/bad.star"
    bad.write_text("\n".join(lines) + "\n")
    assert main(["backproject", str(bad), "-o", str(tmp_path / "map.mrc")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "_rlnAngleRot of particle 1 is 'abc', not a number" in err[0], err
