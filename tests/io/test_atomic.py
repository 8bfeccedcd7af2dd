import os
import stat

import pytest

from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.errors import UserInputError
from dnnergy.io import atomic_write, write_generated

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def umask():
    """Set the process umask for one test (``umask(mask)``) and restore the old one afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def report():
    records = (
        EnergyRecord("conv", "conv", "compute", "MAC", 10, 16, 10.0),
        EnergyRecord("conv", "conv", "weight", "DRAM", 2, 16, 400.0),
        EnergyRecord("fc", "fc", "ifmap", "RF", 5, 16, 5.0),
    )
    return EnergyReport(records, "pJ", "hw", "flow", "net", levels=("DRAM", "RF"))


def test_bytes_str_and_writer_are_written_exactly(tmp_path):
    assert atomic_write(tmp_path / "a.bin", b"\x00\xff") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    atomic_write(str(tmp_path / "b.txt"), "héllo\r\n")
    assert (tmp_path / "b.txt").read_bytes() == b"h\xc3\xa9llo\r\n"  # UTF-8, newlines untouched
    atomic_write(tmp_path / "c.bin", lambda f: (f.write(b"ab"), f.write(b"cd")))
    assert (tmp_path / "c.bin").read_bytes() == b"abcd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.bin"]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old and longer")
    atomic_write(path, "new")
    assert path.read_text() == "new"


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_permissions_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert mode(atomic_write(tmp_path / "f.txt", "x")) == expected
    assert expected == 0o666 & ~mask


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_failing_writer_leaves_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "keep.txt"
    path.write_text("precious")

    def writer(handle):
        handle.write(b"half of the new cont")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, writer)
    assert path.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_failed_rename_leaves_no_temporary(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside").write_text("x")
    with pytest.raises(OSError):  # os.replace cannot put a file over a non-empty folder
        atomic_write(tmp_path / "folder", "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_missing_folder_is_a_user_error(tmp_path):
    path = tmp_path / "nope" / "f.txt"
    with pytest.raises(UserInputError) as info:
        atomic_write(path, "x")
    assert str(info.value) == f"cannot write {path}: folder {tmp_path / 'nope'} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_other_data_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="bytes, str or a callable.*got int"):
        atomic_write(tmp_path / "f", 42)
    assert list(tmp_path.iterdir()) == []


def test_energy_report_files_are_0644(tmp_path, umask):
    umask(0o022)
    text = report().to_json(tmp_path / "r.json")
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == text
    csv = report().to_csv(tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8") == csv
    assert mode(tmp_path / "r.json") == mode(tmp_path / "r.csv") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]


def test_plot_breakdown_writes_png_and_svg_0644(tmp_path, umask):
    pytest.importorskip("matplotlib")
    from dnnergy.report import plot_breakdown

    umask(0o022)
    assert plot_breakdown(report(), tmp_path / "b.png") == tmp_path / "b.png"
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC
    plot_breakdown(report(), tmp_path / "b.svg")
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()[:1000]
    plot_breakdown(report(), tmp_path / "nosuffix")
    assert (tmp_path / "nosuffix").read_bytes()[:8] == PNG_MAGIC
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"b.png": 0o644, "b.svg": 0o644, "nosuffix": 0o644}


def test_plot_to_unknown_format_or_missing_folder_writes_nothing(tmp_path):
    pytest.importorskip("matplotlib")
    from dnnergy.report import plot_breakdown

    with pytest.raises(ValueError, match="txt"):
        plot_breakdown(report(), tmp_path / "b.txt")
    with pytest.raises(UserInputError, match="does not exist"):
        plot_breakdown(report(), tmp_path / "nope" / "b.png")
    assert list(tmp_path.iterdir()) == []


def test_write_generated_checks_or_writes(tmp_path, capsys):
    page = tmp_path / "page.md"
    assert write_generated(page, "v1\n", check=True) == 1  # missing: stale
    assert write_generated(page, "v1\n") == 0 and page.read_text() == "v1\n"
    assert capsys.readouterr().out == f"wrote {page}\n"
    assert write_generated(page, "v1\n", check=True) == 0
    assert write_generated(page, "v2\n", check=True) == 1 and page.read_text() == "v1\n"  # a check never writes
