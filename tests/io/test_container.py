import hashlib
import json
import os
import stat
import struct

import pytest
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dnnergy
from dnnergy.errors import UserInputError
from dnnergy.io import FORMAT_VERSION, MAGIC, Container, dumps_container, loads_container, read_container, write_container
from dnnergy.io.container import _unshared

HEADER = {"epochs": 3, "lr": 0.5, "name": "lénet", "ok": True, "none": None,
          "layers": [{"name": "fc1", "shape": (4, 3), "kept": [0, 2]}, {"name": "fc2", "mask": {"a": [[1], []]}}]}


def tensors():
    base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    return {
        "f32": base,
        "f32.transposed": base.transpose(0, 2),  # non-contiguous view of f32
        "f32.row": base[1, 2],  # contiguous view overlapping f32
        "f32.same": base,  # the same tensor twice (tied weights)
        "f16": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "bf16": torch.tensor([[0.25, 3.0]], dtype=torch.bfloat16),
        "f64": torch.tensor([1e-300]),
        "i64": torch.tensor([-(2 ** 62), 7], dtype=torch.int64),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3, dtype=torch.int32),
        "empty": torch.empty(0, 5),
        "strided": torch.arange(10.0)[::3],
        "expanded": torch.ones(1, 3).expand(4, 3),
    }


def as_lists(value):
    """What JSON gives back for ``value``: tuples become lists."""
    return json.loads(json.dumps(value))


def assert_same_tensors(got, expected):
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name


def test_round_trip_of_mixed_tensors_and_nested_header(tmp_path):
    path = write_container(tmp_path / "m.dnr", "weights", HEADER, tensors())
    assert path == tmp_path / "m.dnr"
    c = read_container(path, kind="weights")
    assert (c.kind, c.version, c.path) == ("weights", 1, path)
    assert c.header == {"kind": "weights", "dnnergy_version": dnnergy.__version__, **as_lists(HEADER)}
    assert_same_tensors(c.tensors, tensors())
    c.tensors["f32"][0, 0, 0] = 100.0  # loaded tensors own their memory
    assert c.tensors["f32.same"][0, 0, 0] == 0.0


def test_empty_container(tmp_path):
    c = read_container(write_container(tmp_path / "e.dnr", "empty", {}, {}))
    assert c.tensors == {} and c.header == {"kind": "empty", "dnnergy_version": dnnergy.__version__}


def test_layout_byte_by_byte():
    ts = {"w": torch.tensor([[1.0, 2.0]]), "m": torch.tensor([True])}
    data = dumps_container("demo", {"a": [1, 2]}, ts)
    assert data[:8] == b"\x89DNRGY\r\n" == MAGIC
    assert struct.unpack("<I", data[8:12]) == (1,) == (FORMAT_VERSION,)
    assert data[12:44] == hashlib.sha256(data[44:]).digest()
    (n,) = struct.unpack("<Q", data[44:52])
    header = json.loads(data[52:52 + n].decode("utf-8"))
    assert header == {"kind": "demo", "dnnergy_version": dnnergy.__version__, "a": [1, 2]}
    assert_same_tensors(safetensors.torch.load(data[52 + n:]), ts)


def test_file_and_bytes_forms_agree(tmp_path):
    path = write_container(tmp_path / "m.dnr", "demo", HEADER, tensors())
    assert path.read_bytes() == dumps_container("demo", HEADER, tensors())
    assert loads_container(path.read_bytes()).path is None


def test_only_duplicates_are_copied():
    base = torch.zeros(4, 6)
    out = _unshared({"base": base, "row0": base[0], "again": base, "half": torch.zeros(8)[:4]})
    assert out["base"].data_ptr() == base.data_ptr()  # kept in place, not copied
    assert out["again"].data_ptr() != base.data_ptr()  # overlaps base: cloned
    assert out["row0"].data_ptr() != base.data_ptr()
    pieces = torch.zeros(2, 5)
    out = _unshared({"a": pieces[0], "b": pieces[1]})  # same storage, disjoint bytes: both kept in place
    assert (out["a"].data_ptr(), out["b"].data_ptr()) == (pieces[0].data_ptr(), pieces[1].data_ptr())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_flipped_byte_after_magic_and_version_is_detected(data):
    good = dumps_container("demo", HEADER, tensors())
    offset = data.draw(st.integers(12, len(good) - 1), label="offset")
    xor = data.draw(st.integers(1, 255), label="xor")
    bad = bytearray(good)
    bad[offset] ^= xor
    # a flipped length byte makes the file look short; any other flip breaks the checksum
    with pytest.raises(UserInputError, match=r"^<bytes>: (corrupted: checksum mismatch|truncated)"):
        loads_container(bytes(bad))


def test_flipped_header_byte_is_a_checksum_mismatch(tmp_path):
    path = write_container(tmp_path / "m.dnr", "demo", HEADER, {})
    data = bytearray(path.read_bytes())
    data[60] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserInputError) as info:
        read_container(path)
    assert str(info.value) == f"{path}: corrupted: checksum mismatch"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_truncation_is_detected(data):
    good = dumps_container("demo", HEADER, tensors())
    length = data.draw(st.integers(0, len(good) - 1), label="length")
    with pytest.raises(UserInputError, match=r"^<bytes>: truncated"):
        loads_container(good[:length])


def test_appended_bytes_are_detected():
    with pytest.raises(UserInputError, match="checksum mismatch"):
        loads_container(dumps_container("demo", {}, {"w": torch.ones(3)}) + b"\n")


def test_not_a_dnnergy_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is text\n")
    with pytest.raises(UserInputError, match=rf"^{path}: not a dnnergy file"):
        read_container(path)


@pytest.mark.parametrize("name", ["model.pt", "lenet300-mnist-seed0-0123456789abcdef.dnnergy"])
@pytest.mark.parametrize("zipped", [True, False])
def test_torch_save_file_is_named_a_pytorch_checkpoint(tmp_path, zipped, name):
    # a long name matters: torch.save's zip entries are "<stem>/data.pkl", past the first bytes of the file
    path = tmp_path / name
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(UserInputError) as info:
        read_container(path)
    assert str(info.value).startswith(f"{path}: a PyTorch checkpoint, not a dnnergy file")


def test_newer_format_version_is_refused(tmp_path):
    data = bytearray(dumps_container("demo", {}, {}))
    data[8:12] = (2).to_bytes(4, "little")  # the checksum starts at offset 44: it stays valid
    path = tmp_path / "new.dnr"
    path.write_bytes(bytes(data))
    with pytest.raises(UserInputError) as info:
        read_container(path)
    assert str(info.value) == f"{path}: written by a newer dnnergy (format 2); this version reads format 1"


def test_kind_mismatch(tmp_path):
    path = write_container(tmp_path / "m.dnr", "weights", {}, {})
    with pytest.raises(UserInputError) as info:
        read_container(path, kind="record")
    assert str(info.value) == f"{path}: is a weights file, expected record"


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError) as info:
        read_container(tmp_path / "gone.dnr")
    assert str(info.value) == f"file not found: {tmp_path / 'gone.dnr'}"


def handmade(header: bytes, body: bytes = b"") -> bytes:
    """A container built from raw header bytes, with a correct checksum (independent of dnnergy's writer)."""
    rest = struct.pack("<Q", len(header)) + header + body
    return MAGIC + struct.pack("<I", 1) + hashlib.sha256(rest).digest() + rest


@pytest.mark.parametrize("header", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"kind": "demo"}', b'{"kind": 3, "dnnergy_version": "0"}'])
def test_unreadable_header(header):
    with pytest.raises(UserInputError, match="^<bytes>: unreadable header"):
        loads_container(handmade(header, safetensors.torch.save({})))


def test_handmade_container_is_read():
    body = safetensors.torch.save({"w": torch.tensor([1, 2], dtype=torch.int16)})
    c = loads_container(handmade(b'{"kind": "demo", "dnnergy_version": "9.9", "x": 1}', body), kind="demo")
    assert c.header["x"] == 1 and c.header["dnnergy_version"] == "9.9"
    assert torch.equal(c.tensors["w"], torch.tensor([1, 2], dtype=torch.int16))


def test_unreadable_tensor_section():
    with pytest.raises(UserInputError, match="^<bytes>: unreadable tensor section"):
        loads_container(handmade(b'{"kind": "demo", "dnnergy_version": "0"}', b"\x03\x00\x00\x00\x00\x00\x00\x00[1]"))


@pytest.mark.parametrize("header, error, message", [
    ({"loss": float("nan")}, UserInputError, r"header\['loss'\] is nan"),
    ({"a": {"b": [1, float("inf")]}}, UserInputError, r"header\['a'\]\['b'\]\[1\] is inf"),
    ({"a": {"w": torch.ones(1)}}, TypeError, r"header\['a'\]\['w'\] is a Tensor"),
    ({"a": {1: "x"}}, TypeError, r"header\['a'\] has a key 1 of type int"),
    ({"kind": "other"}, UserInputError, "reserved"),
    ({"dnnergy_version": "0"}, UserInputError, "reserved"),
])
def test_bad_header_writes_nothing(tmp_path, header, error, message):
    with pytest.raises(error, match=message):
        write_container(tmp_path / "m.dnr", "demo", header, {})
    assert list(tmp_path.iterdir()) == []


def test_self_containing_header():
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(UserInputError, match=r"header\['a'\]\[0\] contains itself"):
        dumps_container("demo", loop, {})


@pytest.mark.parametrize("tensors, message", [
    ({"c": torch.zeros(2, dtype=torch.complex128)}, r"dtype torch.complex128 \(tensors \['c'\]\)"),
    ({"s": torch.eye(2).to_sparse()}, "'s' is torch.sparse_coo"),
    ({"__metadata__": torch.zeros(1)}, "'__metadata__' is not allowed"),
])
def test_tensors_safetensors_cannot_store(tensors, message):
    with pytest.raises(UserInputError, match=message):
        dumps_container("demo", {}, tensors)


def test_container_permissions_follow_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_container(tmp_path / "m.dnr", "demo", {}, {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_container_is_validated_at_birth():
    with pytest.raises(UserInputError, match="version"):
        Container("demo", 2, {"kind": "demo"}, {})
    with pytest.raises(UserInputError, match="header"):
        Container("demo", 1, {"kind": "other"}, {})
    with pytest.raises(UserInputError, match="kind"):
        Container("", 1, {"kind": ""}, {})
