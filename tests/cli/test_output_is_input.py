"""An output that is also an input is refused, --force or not, and the input stays intact
(issue 11: preprocess/downsample onto their own stack used to leave it all zeros)."""

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.io.mrc_stacks import MRCStack


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("same") / "sim"
    assert main(["simulate", "adk_open", "-o", str(out), "-n", "20", "--box", "32", "--apix", "3.0", "-q"]) == 0
    return out


def _images(path):
    with MRCStack(path) as stack:
        return stack.read_all()


@pytest.mark.parametrize(
    "argv",
    [
        ["preprocess", "{stack}", "-o", "{stack}", "--invert", "--force"],
        ["preprocess", "{star}", "-o", "{stack}", "--force"],
        ["preprocess", "{star}", "-o", "{sim}/other.mrcs", "--force"],  # another file: allowed
        ["downsample", "{stack}", "-D", "16", "-o", "{stack}", "--force"],
        ["downsample", "{star}", "-D", "16", "-o", "{sim}/particles.mrcs", "--force"],
    ],
)
def test_an_output_that_is_an_input_is_refused(sim, capsys, argv):
    stack, star = sim / "particles.mrcs", sim / "particles.star"
    before = _images(stack)
    argv = [a.format(stack=stack, star=star, sim=sim) for a in argv]
    code = main(argv)
    if "other.mrcs" in " ".join(argv):  # a new stack next to the input: allowed, the input untouched
        assert code == 0
    else:
        assert code == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is also an input of this command" in err[0], err
    np.testing.assert_array_equal(_images(stack), before)


def test_a_zero_batch_size_is_one_line_and_writes_nothing(sim, capsys, tmp_path):
    for argv in (
        ["backproject", str(sim / "particles.star"), "-o", str(tmp_path / "map.mrc"), "--batch-size", "0"],
        [
            "simulate",
            "adk_open",
            "-o",
            str(tmp_path / "s"),
            "-n",
            "10",
            "--box",
            "32",
            "--apix",
            "3",
            "--batch-size",
            "0",
        ],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "batch size must be at least 1" in err[0], err
    assert not list(tmp_path.rglob("*.mrc*"))
