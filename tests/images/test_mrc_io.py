"""Maps and stacks: round trips, headers and the errors for broken files."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from cryoscape.errors import InputError, OverwriteError
from cryoscape.io.mrc import read_map, stack_info, write_map
from cryoscape.io.mrc_stacks import MRCStack, read_stack_list
from cryoscape.io.mrc_writer import StackWriter, write_stack


def test_map_round_trip_keeps_values_voxel_size_and_origin(tmp_path, rng):
    vol = rng.normal(size=(12, 12, 12)).astype(np.float32)
    write_map(tmp_path / "m.mrc", vol, 2.25, origin_A=[-13.5, 4.0, 27.0])
    out, apix, origin = read_map(tmp_path / "m.mrc")
    assert out.dtype == np.float32 and out.shape == (12, 12, 12)
    np.testing.assert_array_equal(out, vol)
    assert apix == pytest.approx(2.25, abs=1e-6)
    np.testing.assert_allclose(origin, [-13.5, 4.0, 27.0], atol=1e-5)
    with mrcfile.open(tmp_path / "m.mrc") as mrc:  # what ChimeraX reads
        assert mrc.header.mode == 2
        assert float(mrc.voxel_size.x) == pytest.approx(2.25, abs=1e-6)
        assert float(mrc.header.origin.x) == pytest.approx(-13.5)
        assert float(mrc.header.dmax) == pytest.approx(vol.max())


def test_map_axis_order_is_z_y_x(tmp_path):
    vol = np.zeros((4, 4, 4), np.float32)
    vol[3, 2, 1] = 1.0  # z=3, y=2, x=1
    write_map(tmp_path / "m.mrc", vol, 1.0)
    with mrcfile.open(tmp_path / "m.mrc") as mrc:
        assert mrc.data[3, 2, 1] == 1.0
    assert read_map(tmp_path / "m.mrc")[0][3, 2, 1] == 1.0


def test_map_origin_from_nstart_when_origin_is_zero(tmp_path):
    with mrcfile.new(tmp_path / "m.mrc") as mrc:
        mrc.set_data(np.zeros((4, 4, 4), np.float32))
        mrc.voxel_size = 2.0
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = -2, -3, 5
    np.testing.assert_allclose(read_map(tmp_path / "m.mrc")[2], [-4.0, -6.0, 10.0])


def test_map_write_refuses_overwrite_and_bad_volumes(tmp_path):
    vol = np.ones((4, 4, 4), np.float32)
    write_map(tmp_path / "m.mrc", vol, 1.0)
    with pytest.raises(OverwriteError):
        write_map(tmp_path / "m.mrc", vol, 1.0)
    write_map(tmp_path / "m.mrc", 2 * vol, 1.0, force=True)
    assert read_map(tmp_path / "m.mrc")[0].mean() == 2.0
    vol[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_map(tmp_path / "n.mrc", vol, 1.0)


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_map_errors_non_cubic_nan_empty_corrupt(tmp_path):
    with mrcfile.new(tmp_path / "box.mrc") as mrc:
        mrc.set_data(np.zeros((4, 6, 8), np.float32))
    with pytest.raises(InputError, match=r"box.mrc is not a cubic map \(8×6×4"):
        read_map(tmp_path / "box.mrc")
    assert read_map(tmp_path / "box.mrc", require_cubic=False)[0].shape == (4, 6, 8)

    nan = np.zeros((4, 4, 4), np.float32)
    nan[0, 1, 2], nan[1, 1, 1] = np.nan, np.inf
    with mrcfile.new(tmp_path / "nan.mrc") as mrc:
        mrc.set_data(nan)
    with pytest.raises(InputError, match="nan.mrc holds 2 NaN/Inf voxels"):
        read_map(tmp_path / "nan.mrc")

    (tmp_path / "empty.mrc").write_bytes(b"")
    with pytest.raises(InputError, match="empty.mrc is empty"):
        read_map(tmp_path / "empty.mrc")
    (tmp_path / "junk.mrc").write_bytes(b"this is not a map\n" * 100)
    with pytest.raises(InputError, match="junk.mrc is not a"):
        read_map(tmp_path / "junk.mrc")
    (tmp_path / "short.mrc").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="short.mrc"):
        read_map(tmp_path / "short.mrc")
    with pytest.raises(InputError, match="does not exist"):
        read_map(tmp_path / "missing.mrc")


def test_stack_round_trip_and_info(tmp_path, rng):
    imgs = rng.normal(size=(9, 10, 10)).astype(np.float32)
    write_stack(tmp_path / "s.mrcs", imgs, 3.2)
    assert stack_info(tmp_path / "s.mrcs") == (9, 10, pytest.approx(3.2, abs=1e-6))
    with MRCStack(tmp_path / "s.mrcs") as stack:
        assert (stack.n, stack.D) == (9, 10)
        np.testing.assert_array_equal(stack.read_all(), imgs)
        idx = np.array([8, 0, 3, 3, 5])
        got = stack.get(idx)
        assert got.dtype == np.float32 and got.shape == (5, 10, 10)
        np.testing.assert_array_equal(got, imgs[idx])
        assert stack.get(np.array([], dtype=int)).shape == (0, 10, 10)
    with mrcfile.open(tmp_path / "s.mrcs") as mrc:
        assert mrc.is_image_stack()
        assert float(mrc.header.dmean) == pytest.approx(imgs.mean(), abs=1e-5)
        assert float(mrc.header.rms) == pytest.approx(imgs.std(), rel=1e-4)


def test_stack_reads_int16_and_big_endian(tmp_path):
    data = np.arange(2 * 4 * 4, dtype=np.int16).reshape(2, 4, 4)
    with mrcfile.new(tmp_path / "i.mrcs") as mrc:
        mrc.set_data(data)
    with MRCStack(tmp_path / "i.mrcs") as stack:
        np.testing.assert_array_equal(stack.get(np.array([1])), data[1:].astype(np.float32))
    with mrcfile.new(tmp_path / "be.mrcs") as mrc:
        mrc.set_data(data.astype(">f4"))
    with MRCStack(tmp_path / "be.mrcs") as stack:
        np.testing.assert_array_equal(stack.get(np.array([1, 0])), data[[1, 0]].astype(np.float32))


def test_single_2d_image_is_a_stack_of_one(tmp_path):
    with mrcfile.new(tmp_path / "one.mrc") as mrc:
        mrc.set_data(np.full((6, 6), 4.0, np.float32))
    assert stack_info(tmp_path / "one.mrc")[:2] == (1, 6)
    with MRCStack(tmp_path / "one.mrc") as stack:
        assert stack.get(np.array([0])).shape == (1, 6, 6)
        assert stack.get(np.array([0])).sum() == 4.0 * 36


def test_truncated_stack_is_reported(tmp_path, rng):
    path = write_stack(tmp_path / "t.mrcs", rng.normal(size=(10, 8, 8)), 1.0)
    with open(path, "r+b") as f:
        f.truncate(1024 + 6 * 8 * 8 * 4 + 17)  # 6 whole images and a piece
    with pytest.raises(
        InputError, match=r"t.mrcs is truncated: header says 10 images of 8×8 but the file holds only 6"
    ):
        stack_info(path)
    with pytest.raises(InputError, match="truncated"):
        MRCStack(path)


def test_non_square_stack_is_refused(tmp_path):
    with mrcfile.new(tmp_path / "r.mrcs") as mrc:
        mrc.set_data(np.zeros((3, 8, 10), np.float32))
    with pytest.raises(InputError, match=r"r.mrcs holds non-square images \(10×8 pixels\)"):
        stack_info(tmp_path / "r.mrcs")


def test_index_out_of_range_names_stack_index_and_count(tmp_path):
    path = write_stack(tmp_path / "s.mrcs", np.zeros((4, 6, 6)), 1.0)
    with MRCStack(path) as stack:
        with pytest.raises(InputError, match=r"s.mrcs: image index 4 is out of range \(the stack holds 4 images\)"):
            stack.get(np.array([0, 4]))
        with pytest.raises(InputError, match="index -1"):
            stack.get(np.array([-1]))


def test_stack_writer_in_chunks(tmp_path, rng):
    imgs = rng.normal(size=(11, 8, 8)).astype(np.float32)
    with StackWriter(tmp_path / "w.mrcs", 11, 8, 0.9) as writer:
        for start in (8, 0, 4):  # any order
            writer.write(start, imgs[start : start + 4])
    assert stack_info(tmp_path / "w.mrcs") == (11, 8, pytest.approx(0.9, abs=1e-6))
    with MRCStack(tmp_path / "w.mrcs") as stack:
        np.testing.assert_array_equal(stack.read_all(), imgs)
    with mrcfile.open(tmp_path / "w.mrcs") as mrc:
        assert float(mrc.header.dmin) == pytest.approx(imgs.min())
        assert float(mrc.header.dmax) == pytest.approx(imgs.max())
    writer = StackWriter(tmp_path / "part.mrcs", 5, 8, 1.0)
    writer.write(0, imgs[:3])
    with pytest.raises(InputError, match="2 of 5 images were never written"):
        writer.close()
    with pytest.raises(OverwriteError):
        StackWriter(tmp_path / "w.mrcs", 11, 8, 0.9)


def test_read_stack_list_relative_to_the_txt(tmp_path):
    (tmp_path / "sub").mkdir()
    write_stack(tmp_path / "sub" / "a.mrcs", np.zeros((2, 4, 4)), 1.0)
    write_stack(tmp_path / "b.mrcs", np.zeros((3, 4, 4)), 1.0)
    (tmp_path / "list.txt").write_text(f"# stacks\nsub/a.mrcs\n\n{tmp_path / 'b.mrcs'}\n")
    assert read_stack_list(tmp_path / "list.txt") == [tmp_path / "sub" / "a.mrcs", tmp_path / "b.mrcs"]
    (tmp_path / "bad.txt").write_text("sub/a.mrcs\nnope.mrcs\n")
    with pytest.raises(InputError, match=r"bad.txt line 2: stack .*nope.mrcs does not exist"):
        read_stack_list(tmp_path / "bad.txt")
