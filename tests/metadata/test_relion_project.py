"""A RELION project's particle file names its stacks relative to the project folder
(``Refine3D/job010/run_data.star`` holds ``…@Extract/job005/Movies/mic1.mrcs``): cryoscape reads it
from any working directory, and `select` writes subsets whose image paths still resolve, unchanged
inside the project and absolute outside it (issue 11, item 1)."""

import shutil

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles
from cryoscape.io.star import read_star


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("relion")
    sim = root / "sim"
    assert main(["simulate", "adk_open", "-o", str(sim), "-n", "12", "--box", "32", "--apix", "3.0", "-q"]) == 0
    proj = root / "project"
    (proj / "Extract/job005/Movies").mkdir(parents=True)
    (proj / "Refine3D/job010").mkdir(parents=True)
    shutil.copy(sim / "particles.mrcs", proj / "Extract/job005/Movies/mic1.mrcs")
    star = (sim / "particles.star").read_text().replace("@particles.mrcs", "@Extract/job005/Movies/mic1.mrcs")
    (proj / "Refine3D/job010/run_data.star").write_text(star)
    return proj


def test_project_relative_paths_are_found_from_anywhere(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the project folder: found from the folders above the star
    table = load_particles(project / "Refine3D/job010/run_data.star")
    assert len(table) == 12
    assert set(table.image_paths) == {str((project / "Extract/job005/Movies/mic1.mrcs").resolve())}


def test_select_keeps_project_paths_inside_the_project_and_absolute_outside(project, monkeypatch, tmp_path):
    monkeypatch.chdir(project)
    labels = np.arange(12) % 2
    np.save(tmp_path / "labels.npy", labels)
    inside = project / "Select/job020/particles.star"
    outside = tmp_path / "elsewhere/subset.star"
    for output in (inside, outside):
        assert (
            main(
                [
                    "select",
                    "Refine3D/job010/run_data.star",
                    "--labels",
                    str(tmp_path / "labels.npy"),
                    "--keep",
                    "1",
                    "-o",
                    str(output),
                    "-q",
                ]
            )
            == 0
        )
    names = read_star(inside)[0]["rlnImageName"].str.partition("@")[2]
    assert set(names) == {"Extract/job005/Movies/mic1.mrcs"}  # as RELION wrote them
    names = read_star(outside)[0]["rlnImageName"].str.partition("@")[2]
    assert set(names) == {str(project / "Extract/job005/Movies/mic1.mrcs")}
    monkeypatch.chdir(tmp_path)
    for output in (inside, outside):
        subset = load_particles(output)
        assert len(subset) == 6 and subset.image_indices.tolist() == list(range(1, 12, 2))


def test_a_value_that_is_not_a_number_is_named(project, capsys, tmp_path):
    star = (project / "Refine3D/job010/run_data.star").read_text()
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
