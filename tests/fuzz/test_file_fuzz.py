"""Damaged and hostile files (issue 14, "mutated files"): hardware YAML, ONNX models, dnnergy containers.

Every file dnnergy reads either loads into something usable (finite, non-negative
energies; finite MACs; the model that was saved) or raises a :class:`DnnergyError`
whose message names the file and the problem. Mutations start from real files: every
bundled hardware preset, tiny models exported to ONNX by ``torch.onnx.export``, and
containers written by ``dnnergy.save`` and the pretrained-checkpoint cache.
"""

from __future__ import annotations

import codecs
import copy
import importlib
import math
import random
import re
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy.compress import Masks
from dnnergy.compress.removal import prune_channels
from dnnergy.energy import estimate, list_dataflows
from dnnergy.errors import DnnergyError, HardwareConfigError, UserInputError
from dnnergy.hardware import load_hardware
from dnnergy.hardware.loader import PRESET_DIR, list_presets
from dnnergy.io import dumps_container, read_container
from dnnergy.workload import Layer, Workload, formulas
from dnnergy.workload.onnx_import import from_onnx

FUZZ = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
pretrained = importlib.import_module("dnnergy.train.pretrained")  # the module (dnnergy.train.pretrained is also a function)
PRESETS = {name: (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8") for name in list_presets()}


def _tiny_workload() -> Workload:
    """A conv (sparse 8-bit weights), an FC and a pooling layer: every pricing path of ``estimate``."""
    conv = Layer("conv", op="aten.convolution", w_bits=8, w_density=0.4, i_density=0.7,
                 **formulas.conv([1, 2, 6, 6], [3, 2, 3, 3], [1, 3, 4, 4], 1, 0, 1, 1))
    pool = Layer("pool", op="aten.max_pool2d", **formulas.pool([1, 3, 4, 4], [1, 3, 2, 2], [2, 2], [2, 2], [0, 0]))
    fc = Layer("fc", op="aten.linear", i_density=0.5, **formulas.fc(1, 12, 5, biases=5))
    return Workload((conv, pool, fc), "tiny")


TINY = _tiny_workload()


def _check_energies(hardware) -> None:
    """Every dataflow prices the tiny workload with finite, non-negative energies (or refuses with a DnnergyError)."""
    for dataflow in list_dataflows():
        try:
            report = estimate(TINY, hardware, dataflow)
        except DnnergyError:
            continue  # e.g. a mapper that finds no mapping for a 1-byte buffer: said, not guessed
        for record in report.records:
            assert math.isfinite(record.energy) and record.energy >= 0, (dataflow, record)
        assert math.isfinite(report.total) and report.total >= 0


def _load_or_refuse(path: Path, names: tuple[str, ...] = ()):
    """The hardware in ``path``, or ``None`` after checking the error names the file and one of ``names``."""
    try:
        hardware = load_hardware(path)
    except DnnergyError as err:
        message = str(err)
        assert isinstance(err, HardwareConfigError), message
        assert str(path) in message, message
        assert "\n" not in message.strip() or "YAML" in message, message
        assert len(message) < 2000, f"message of {len(message)} characters"
        if names:
            assert any(name in message for name in names), (names, message)
        return None
    hash(hardware)
    return hardware


# -- hardware YAML: structural mutations of every preset -----------------------------------------

#: Values put where a field was: wrong types, huge, negative, not a number, nested.
ODD_VALUES = ["text", "", -1, -0.5, 0, 0.0, 10**400, 2**64, float("nan"), float("inf"), float("-inf"), 1e308,
              None, True, [], [1, 2], {}, {"a": {"b": [1, {"c": 2}]}}, "1e5", "DRAM", "csc"]


def _paths(node, prefix=()):
    """Every (path, value) in a parsed YAML document, parents before children."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _names(path: tuple) -> tuple[str, ...]:
    """What an error about the node at ``path`` should mention: one of its keys (``levels``, ``energy``) or the whole document."""
    keys = [f"[{p}]" if isinstance(p, int) else str(p) for p in path]
    return tuple(keys) if keys else ()


@st.composite
def structural_mutations(draw):
    name = draw(st.sampled_from(sorted(PRESETS)))
    data = yaml.safe_load(PRESETS[name])
    paths = [p for p, _ in _paths(data)]
    path = draw(st.sampled_from(paths[1:]))
    action = draw(st.sampled_from(["delete", "replace", "replace", "replace", "unknown_key", "wrap_list", "wrap_map"]))
    value = draw(st.sampled_from(ODD_VALUES))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "replace":
        parent[key] = copy.deepcopy(value)
    elif action == "unknown_key":
        target = parent[key] if isinstance(parent[key], dict) else parent
        target["energi"] = 1.0
    elif action == "wrap_list":
        parent[key] = [parent[key]]
    else:
        parent[key] = {"value": parent[key]}
    return name, path, action, yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@settings(FUZZ, max_examples=80)
@given(structural_mutations())
def test_structurally_mutated_presets_load_or_name_file_and_field(tmp_path, case):
    name, path, action, text = case
    file = tmp_path / f"{name}.yaml"
    file.write_text(text, encoding="utf-8")
    names = _names(path) + ("energi",) if action == "unknown_key" else _names(path)
    hardware = _load_or_refuse(file, names)
    if hardware is not None:
        _check_energies(hardware)


# -- hardware YAML: damaged text ----------------------------------------------------------------

def _deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else "{a: " * depth + "1" + "}" * depth


@st.composite
def text_mutations(draw):
    name = draw(st.sampled_from(sorted(PRESETS)))
    raw = PRESETS[name].replace("description: \"", "description: \"Größe ", 1).encode("utf-8")
    action = draw(st.sampled_from(["truncate", "flip", "insert", "duplicate_line", "drop_line", "latin-1",
                                   "utf-16-bom", "utf-16-no-bom", "utf-32-bom", "deep", "random", "tag", "alias"]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    lines = raw.split(b"\n")
    if action == "truncate":
        raw = raw[:rng.randrange(len(raw))]
    elif action == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        raw = bytes(data)
    elif action == "insert":
        at = rng.randrange(len(raw))
        raw = raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + raw[at:]
    elif action in ("duplicate_line", "drop_line"):
        i = rng.randrange(len(lines))
        lines[i:i + 1] = [lines[i], lines[i]] if action == "duplicate_line" else []
        raw = b"\n".join(lines)
    elif action == "latin-1":
        raw = raw.decode("utf-8").encode("latin-1")
    elif action == "utf-16-bom":
        raw = raw.decode("utf-8").encode("utf-16")
    elif action == "utf-16-no-bom":
        raw = raw.decode("utf-8").encode("utf-16-le")
    elif action == "utf-32-bom":
        raw = codecs.BOM_UTF32_BE + raw.decode("utf-8").encode("utf-32-be")
    elif action == "deep":
        field = rng.choice([b"energy: 200", b"word_bits: 16", b"word_bits: 32", b"word_bits: 8"])
        key = field.split(b":")[0]
        raw = raw.replace(field, key + b": " + _deep(rng.choice([5, 200, 5000]), rng.choice(["list", "map"])).encode(), 1)
    elif action == "random":
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    elif action == "tag":
        raw = raw.replace(b"unit: ", b"unit: !!python/object/apply:os.system ['echo hi'] #", 1)
    else:  # a billion-laughs value: a list whose last item is a 9**9-element tree of shared lists
        fields = [b"name", b"description", b"unit", b"word_bits", b"levels", b"mac", b"  - {name: DRAM", b"    energy"]
        field = rng.choice([f for f in fields if re.search(rb"(?m)^" + re.escape(f) + rb"[^:]*: ", raw)])
        raw = re.sub(rb"(?m)^(" + re.escape(field) + rb"[^:]*: ).*$", lambda m: m.group(1) + BOMB, raw, count=1)
    return name, action, raw


#: Ten anchors, each nine aliases of the one before: 9**9 values when walked, a few hundred bytes written.
BOMB = b"[" + b", ".join(b"&l%d [%s]" % (i, b", ".join([b"*l%d" % (i - 1)] * 9) if i else b'"lol"') for i in range(10)) + b"]"


@settings(FUZZ, max_examples=80)
@given(text_mutations())
def test_damaged_preset_text_loads_or_names_the_file(tmp_path, case):
    name, action, raw = case
    file = tmp_path / f"{name}.yaml"
    file.write_bytes(raw)
    hardware = _load_or_refuse(file)
    if action in ("utf-16-bom", "utf-32-bom"):
        assert hardware is not None and hardware == load_hardware(name).replace(description=hardware.description)
    if action in ("latin-1", "utf-16-no-bom", "tag", "alias"):
        assert hardware is None
    if hardware is not None:
        _check_energies(hardware)


@pytest.mark.parametrize("field", ["word_bits: 16", "energy: 6", "bits: 16", "rows: 12"])
def test_billion_laughs_is_refused_at_once(tmp_path, field):
    """Found by the fuzzer: ``word_bits: <bomb>`` hung in the error message's repr of 9**9 values."""
    key = field.split(":")[0]
    path = tmp_path / "bomb.yaml"
    path.write_bytes(PRESETS["eyeriss"].replace(field, f"{key}: {BOMB.decode()}", 1).encode())
    with pytest.raises(HardwareConfigError, match=re.escape(str(path)) + r".*aliases expand to more than 100,000 values"):
        load_hardware(path)


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_deep_flow_nesting_is_refused_by_the_scanner(tmp_path, opening):
    """PyYAML's scanner is quadratic in ``[[[[`` depth (1,000 levels took 2.5 s); now refused at level 65."""
    path = tmp_path / "deep.yaml"
    closing = "]" if opening == "[" else "}"
    path.write_text(PRESETS["eyeriss"].replace("word_bits: 16", "word_bits: " + opening * 20000 + "1" + closing * 20000))
    with pytest.raises(HardwareConfigError, match=re.escape(str(path)) + r".*nested too deeply \(more than 64 levels\)"):
        load_hardware(path)


def test_messages_show_at_most_80_characters_of_a_value(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(PRESETS["eyeriss"].replace("word_bits: 16", "word_bits: [" + ", ".join(["12345"] * 2000) + "]"))
    with pytest.raises(HardwareConfigError, match=r"word_bits must be a positive int \(got \[12345, 12345, .*\)$") as info:
        load_hardware(path)
    assert len(str(info.value)) < 300


# -- ONNX ----------------------------------------------------------------------------------------

class _Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return torch.softmax(self.q(x) @ self.k(x).transpose(1, 2), dim=-1) @ x


ONNX_MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)), (1, 12)),
    "cnn": (_Cnn, (1, 1, 6, 6)),
    "attention": (_Attention, (1, 4, 8)),
}


class Files(dict):
    """File contents by name, shown by name only in a failing example."""

    def __repr__(self) -> str:
        return f"Files({sorted(self)})"


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of each tiny model exported by the TorchScript exporter (opset 17)."""
    folder = tmp_path_factory.mktemp("onnx")
    files = Files()
    for name, (build, shape) in ONNX_MODELS.items():
        torch.manual_seed(0)
        path = folder / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(build().eval(), (torch.randn(shape),), str(path), dynamo=False, opset_version=17)
        files[name] = path.read_bytes()
    return files


def _import(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an uncounted op in a damaged graph warns; it is listed in the workload
        return from_onnx(path)


def test_undamaged_onnx_files_import(onnx_files, tmp_path):
    # the hand counts these mutations start from: 12*16 + 16*3; 36 taps*9 in*4 out... see each line
    expected = {"mlp": 12 * 16 + 16 * 3,
                "cnn": 4 * 6 * 6 * 9 + 36 * 5,  # conv: 4 maps of 6x6, 9 taps each; fc 36 -> 5
                "attention": 2 * 4 * 8 * 8 + 4 * 4 * 8 + 4 * 4 * 8}  # q, k; q k^T; softmax(.) x
    for name, data in onnx_files.items():
        (tmp_path / f"{name}.onnx").write_bytes(data)
        assert sum(layer.macs for layer in _import(tmp_path / f"{name}.onnx").layers) == expected[name], name


def _edited(data: bytes, edit) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    edit(model)
    return model.SerializeToString()


def _untyped(model) -> None:
    """The first Gemm's ``transB`` attribute without its type (one flipped bit did it): read as absent, so
    the 16 x 12 weight meets the 12 input features untransposed."""
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    next(a for a in gemm.attribute if a.name == "transB").ClearField("type")


def _renamed_weight(model) -> None:
    """The conv weight renamed (``Conv_17`` -> ``Conr_17``) and its dims changed to 4 x 1 x 3 x 1: its 36 floats no
    longer fill them (two flipped bits did it)."""
    init = next(i for i in model.graph.initializer if list(i.dims) == [4, 1, 3, 3])
    init.name = init.name.replace("Conv", "Conr")
    init.dims[3] = 1


@pytest.mark.parametrize(("name", "damage"), [
    pytest.param("mlp", lambda data: data.replace(b'"\x04Relu', b'"\x04R\xffl\xfe', 1), id="op-type-not-utf8"),
    pytest.param("mlp", lambda data: _edited(data, _untyped), id="operand-shapes-differ"),
    pytest.param("cnn", lambda data: _edited(data, _renamed_weight), id="weight-data-shorter-than-dims"),
])
def test_inconsistent_onnx_graphs_are_import_errors(onnx_files, tmp_path, name, damage):
    """Found by the fuzzer: these raised TypeError (onnx get_schema on bytes) and ValueError (numpy reshape,
    formulas.matmul) with no file name; now OnnxImportError naming the file and what is inconsistent."""
    from dnnergy.errors import OnnxImportError

    damaged = damage(onnx_files[name])
    assert damaged != onnx_files[name]
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(damaged)
    with pytest.raises(OnnxImportError, match=re.escape(str(path)) + r": (inconsistent ONNX model|not a readable)"):
        _import(path)


@st.composite
def onnx_mutations(draw):
    name = draw(st.sampled_from(sorted(ONNX_MODELS)))
    action = draw(st.sampled_from(["flip", "flip", "flip", "truncate", "extend", "overwrite"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return name, action, seed


def _mutate(data: bytes, action: str, rng: random.Random) -> bytes:
    if action == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if action == "truncate":
        return data[:rng.randrange(len(data))]
    if action == "extend":
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    at = rng.randrange(len(data))
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 32))) + data[at + 32:]


@settings(FUZZ, max_examples=80)
@given(onnx_mutations())
def test_damaged_onnx_files_import_or_name_the_file(onnx_files, tmp_path, case):
    name, action, seed = case
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(_mutate(onnx_files[name], action, random.Random(seed)))
    try:
        workload = _import(path)
    except DnnergyError as err:
        assert str(path) in str(err) or path.name in str(err), str(err)
        return
    for layer in workload.layers:
        assert isinstance(layer.macs, int) and 0 <= layer.macs < 2**63, layer
        assert all(math.isfinite(v) and v >= 0 for v in (layer.ops, layer.weights, layer.ifmap, layer.ofmap)), layer


# -- dnnergy containers --------------------------------------------------------------------------

def _checkpoint_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


@pytest.fixture(scope="module")
def containers(tmp_path_factory) -> dict[str, bytes]:
    """Files written by dnnergy: a compressed model (edits, masks, hints) and a pretrained checkpoint."""
    folder = tmp_path_factory.mktemp("containers")
    torch.manual_seed(0)
    model = dnnergy.zoo.create_model("lenet5", num_classes=3)
    model = prune_channels(model, torch.zeros(1, 1, 28, 28), {"conv1": [0, 2]})
    Masks(model, reversible=False).set("fc1.weight", model.fc1.weight.abs() > model.fc1.weight.abs().median())
    object.__setattr__(model.fc2, "dnnergy_hints", {"w_bits": 8})
    saved = dnnergy.save(folder / "model.dnnergy", model)
    pretrained._save(folder / "checkpoint.dnnergy", _checkpoint_model(), {"test_accuracy": 0.5})
    return Files(model=saved.read_bytes(), checkpoint=(folder / "checkpoint.dnnergy").read_bytes())


def _read(kind: str, path: Path):
    if kind == "model":
        return dnnergy.load(path)
    model = _checkpoint_model()
    pretrained._load(path, model)
    return model


def test_undamaged_containers_read_back_the_saved_weights(containers, tmp_path):
    for kind, data in containers.items():
        (tmp_path / f"{kind}.dnnergy").write_bytes(data)
    loaded = dnnergy.load(tmp_path / "model.dnnergy").model
    assert loaded.conv1.out_channels == 18 and loaded.fc2.dnnergy_hints == {"w_bits": 8}  # 20 - 2 channels
    keep = Masks(loaded)["fc1.weight"]
    assert 0 < int(keep.sum()) < keep.numel() and int(loaded.fc1.weight[~keep].count_nonzero()) == 0
    reread = _read("checkpoint", tmp_path / "checkpoint.dnnergy")
    assert all(torch.equal(a, b) for a, b in zip(reread.state_dict().values(), _checkpoint_model().state_dict().values()))


#: What a message about a damaged container says (read_container's checks, in order).
DAMAGE = re.compile(r"truncated|corrupted|checksum|not a dnnergy file|newer dnnergy|magic|unreadable|PyTorch")


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(["model", "checkpoint"]), st.sampled_from(["flip", "flip", "truncate", "extend", "overwrite"]),
       st.integers(0, 2**32 - 1))
def test_damaged_containers_are_refused_naming_file_and_damage(containers, tmp_path, kind, action, seed):
    original = containers[kind]
    damaged = _mutate(original, action, random.Random(seed))
    if damaged == original:
        return
    path = tmp_path / f"{kind}.dnnergy"
    path.write_bytes(damaged)
    with pytest.raises(UserInputError) as info:
        _read(kind, path)
    assert str(path) in str(info.value) and DAMAGE.search(str(info.value)), str(info.value)


@pytest.mark.parametrize("offset", [0, 7, 8, 11, 12, 43, 44, 51, 52, -1])
def test_every_region_of_a_container_is_checked(containers, tmp_path, offset):
    data = bytearray(containers["model"])
    data[offset] ^= 0x01
    path = tmp_path / "m.dnnergy"
    path.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match=re.escape(str(path)) + ".*" + DAMAGE.pattern):
        dnnergy.load(path)


def _header(data: bytes) -> tuple[dict, dict]:
    container = read_container_from_bytes(data)
    header = {k: v for k, v in container.header.items() if k not in ("kind", "dnnergy_version")}
    return header, container.tensors


def read_container_from_bytes(data: bytes):
    from dnnergy.io import loads_container

    return loads_container(data)


#: Hostile header values a crafted file (valid checksum) may carry.
HEADER_VALUES = [None, 3, "x", [], {}, [1, 2], {"a": 1}, [{"kind": "mask"}], {"fc1": 3}, {"nope": {"w_bits": 8}},
                 {"fc2": {"w_bits": -3}}, {"input_shapes": "x", "edits": 3}, {"zoo": "lenet5", "kwargs": {"nope": 1}},
                 {"zoo": "nope"}, ["a", "b"], [1, -5, 0], 1e300, True]


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(["architecture", "edits", "transforms", "hints", "record", "input_shape"]),
       st.sampled_from(HEADER_VALUES), st.sampled_from(["replace", "delete"]))
def test_crafted_model_headers_load_or_name_the_file(containers, tmp_path, key, value, action):
    """A file whose checksum is right but whose header is not what ``save`` writes: loads, or a UserInputError naming it."""
    header, tensors = _header(containers["model"])
    if action == "delete":
        del header[key]
    else:
        header[key] = value
    path = tmp_path / "crafted.dnnergy"
    path.write_bytes(dumps_container("model", header, tensors))
    try:
        loaded = dnnergy.load(path)
    except UserInputError as err:
        assert str(path) in str(err), str(err)
        return
    assert isinstance(loaded.model, nn.Module)
    assert loaded.input_shape is None or all(isinstance(d, int) and d > 0 for d in loaded.input_shape), loaded.input_shape


# -- module:factory references are never taken from a file ---------------------------------------

MARKER_MODULE = """
import pathlib
pathlib.Path(__file__).with_name("imported.txt").write_text("imported")

def build(**kwargs):
    pathlib.Path(__file__).with_name("called.txt").write_text("called")
    import torch
    return torch.nn.Linear(6, 5)
"""


@pytest.fixture()
def marker_module(tmp_path, monkeypatch):
    (tmp_path / "fuzz_marker_models.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fuzz_marker_models:build"
    sys.modules.pop("fuzz_marker_models", None)


def _factory_file(path: Path, architecture: dict) -> Path:
    torch.manual_seed(0)
    state = {f"state/{k}": v for k, v in nn.Linear(6, 5).state_dict().items()}
    header = {"architecture": architecture, "edits": None, "transforms": [], "hints": {}, "record": None,
              "input_shape": [1, 6]}
    path.write_bytes(dumps_container("model", header, state))
    return path


def test_a_factory_named_by_a_file_is_not_imported(tmp_path, marker_module):
    path = _factory_file(tmp_path / "m.dnnergy", {"factory": marker_module, "kwargs": {}})
    with pytest.raises(UserInputError, match=re.escape(str(path)) + ".*does not import or run.*architecture="):
        dnnergy.load(path)
    assert "fuzz_marker_models" not in sys.modules
    assert not (tmp_path / "imported.txt").exists() and not (tmp_path / "called.txt").exists()
    # named by the caller, the same file loads, weights and all
    loaded = dnnergy.load(path, architecture=marker_module)
    assert (tmp_path / "called.txt").exists() and isinstance(loaded.model, nn.Linear)
    assert torch.equal(loaded.model.weight, read_container(path).tensors["state/weight"])


def test_a_file_cannot_run_a_shell_command(tmp_path):
    """Before the fix this file ran ``os.system(command)`` on ``dnnergy.load`` (and so on ``dnnergy summary FILE``)."""
    flag = tmp_path / "ran.txt"
    path = _factory_file(tmp_path / "evil.dnnergy", {"factory": "os:system", "kwargs": {"command": f"echo x > {flag}"}})
    with pytest.raises(UserInputError, match="'os:system', which dnnergy does not import or run"):
        dnnergy.load(path)
    from dnnergy.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["summary", str(path)])
    assert exit_info.value.code == 2 and not flag.exists()


def test_a_factory_this_process_was_given_may_be_named_by_a_file(tmp_path, marker_module):
    model = dnnergy.compress.artifact.build_architecture(marker_module)  # as the command line's MODEL does
    path = dnnergy.save(tmp_path / "m.dnnergy", model)
    assert isinstance(dnnergy.load(path).model, nn.Linear)


def test_records_and_histories_hold_no_code_references(containers):
    """Only the architecture entry of a model file may name a factory, and it is refused unless the caller names it."""
    header, _ = _header(containers["model"])
    text = repr({k: v for k, v in header.items() if k != "architecture"})
    assert not re.search(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*'", text.replace("': ", "")), text


# -- the latency table cache (JSON) ---------------------------------------------------------------

@pytest.mark.parametrize("value", ["NaN", "-Infinity", "Infinity", "-0.5"])
def test_latency_table_with_impossible_seconds_is_refused(tmp_path, value):
    """Found in the audit: json reads NaN and Infinity, so a damaged cache priced layers at NaN seconds."""
    from dnnergy.metrics.latency_table import _FORMAT, LatencyTable

    path = tmp_path / "latency.json"
    path.write_text(f'{{"format": {_FORMAT}, "machine": "x", "entries": {{"Linear(4, 2)": {value}}}}}')
    with pytest.raises(UserInputError, match=re.escape(str(path)) + r": not a dnnergy latency table \(entry .* seconds\)"):
        LatencyTable(torch.zeros(1, 4), path)


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(["flip", "truncate", "extend", "overwrite"]), st.integers(0, 2**32 - 1))
def test_damaged_latency_tables_read_or_name_the_file(tmp_path, action, seed):
    from dnnergy.metrics.latency_table import LatencyTable

    path = tmp_path / "latency.json"
    path.unlink(missing_ok=True)  # the previous example's damaged table
    table = LatencyTable(torch.zeros(1, 4), path, repeats=1, warmup=0)
    table.entries = {"Linear(in_features=4, out_features=2)|1x4": 1.5e-5, "ReLU()|1x2": 2e-6}
    table.save()
    path.write_bytes(_mutate(path.read_bytes(), action, random.Random(seed)))
    try:
        entries = LatencyTable(torch.zeros(1, 4), path).entries
    except UserInputError as err:
        assert str(path) in str(err)
        return
    assert all(math.isfinite(v) and v >= 0 for v in entries.values()), entries
