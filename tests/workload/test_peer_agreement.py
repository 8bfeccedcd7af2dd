"""MACs from ``dnnergy.trace`` against two independent counters, fvcore and ptflops.

What must agree exactly (one multiply-accumulate counted as one "flop" by both peers):

* **fvcore** ``FlopCountAnalysis`` (a TorchScript trace): per module, including every
  descendant, for the operators ``conv``, ``linear``, ``addmm``, ``mm``, ``matmul``,
  ``bmm`` and ``einsum``. fvcore counts no bias additions for these.
* **ptflops** 0.7.5, ``pytorch`` backend (module hooks): per ``Conv1d``/``Conv2d``/
  ``ConvTranspose2d``/``Linear``/``MultiheadAttention`` module, after removing what ptflops
  adds to the MACs: one add per output element for a conv or linear bias, and for
  ``MultiheadAttention`` the query scaling (``L*E``), in-projection bias adds
  (``(L+S+S)*E``), the softmax (``heads*L*S``) and the out-projection bias (``L*E``,
  counted by ptflops even without a bias), all times the batch. Activation modules
  (``ReLU``, ``ReLU6``, ``ELU``, ``LeakyReLU``, ``PReLU``, ``GELU``) and ``Upsample``
  agree too: one op per output element, as dnnergy's ``ops``.
* **ptflops** ``aten`` backend (a dispatch mode like dnnergy's): the whole-model total on a
  copy with every bias removed (its ``addmm`` and ``convolution`` formulas add the bias),
  minus fused attention kernels (``_scaled_dot_product_*``), which it does not count.

Conventions where dnnergy counts what the peers count differently (its ``ops`` field,
never added to MACs):

===================== ============================ ======================= ========================
op                    dnnergy ``ops``              fvcore                  ptflops (pytorch backend)
===================== ============================ ======================= ========================
max/avg pooling       taps per output             not counted             input elements
                      (``N*C*E*F*R*S``, padding
                      taps included)
adaptive pooling      exact taps of PyTorch's      input elements (avg     input elements
                      floor/ceil windows (more     only)
                      than the input when
                      windows overlap)
global mean           input elements               not counted             not counted
BatchNorm (eval)      one per element              1 per element, 2 if     1 per element, 2 if
                                                   affine                  affine
LayerNorm/GroupNorm   one per element              4 per element, 5 if     1 per element, 2 if
                                                   affine                  affine
element-wise add/mul  one per output element       not counted             not counted (module
                                                                           hooks only)
activation, softmax   one per element              not counted             one per element
                                                                           (module hooks)
concat, embedding     zero (data movement)         not counted             not counted
bias additions        not counted (``biases``      not counted             counted in MACs
                      field instead)
===================== ============================ ======================= ========================
"""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import warnings
from functools import lru_cache, partial
from pathlib import Path

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info
from ptflops.pytorch_engine import add_flops_counting_methods
from torch import nn

import dnnergy
from dnnergy import zoo
from test_trace_ops import HandWrittenAttention  # the same block, reused (pytest puts this folder on sys.path)

FVCORE_MAC_OPERATORS = frozenset({"conv", "linear", "addmm", "mm", "matmul", "bmm", "einsum"})
PTFLOPS_MAC_MODULES = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.MultiheadAttention)
PTFLOPS_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.PReLU, nn.GELU, nn.Upsample)
FUSED_ATTENTION = "aten._scaled_dot_product"

# -- test models ----------------------------------------------------------------------------------


class GroupedNet(nn.Module):
    """Grouped, depthwise and pointwise convolutions with BN, ReLU6 and a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.grouped = nn.Conv2d(8, 12, 3, padding=1, groups=4, bias=False)
        self.bn = nn.BatchNorm2d(12)
        self.dw = nn.Conv2d(12, 24, 5, stride=2, padding=2, groups=12)
        self.pw = nn.Conv2d(24, 16, 1)
        self.act = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.act(self.bn(self.grouped(self.stem(x))))
        x = self.act(self.pw(self.dw(x)))
        return self.fc(self.pool(x).flatten(1))


class DilatedNet(nn.Module):
    """Dilated and asymmetric convolutions (atrous, DeepLab-style), strided and padded."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=2, dilation=2)
        self.b = nn.Conv2d(6, 6, (3, 5), stride=(1, 2), padding=(3, 4), dilation=(3, 2))
        self.c = nn.Conv2d(6, 4, 3, stride=3)
        self.act = nn.LeakyReLU()

    def forward(self, x):
        return self.c(self.act(self.b(self.act(self.a(x)))))


class DecoderNet(nn.Module):
    """Transposed convolutions (plain, grouped, output padding) and an upsample."""

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)
        self.resize = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(4, 1, 1)
        self.act = nn.ELU()

    def forward(self, x):
        return self.head(self.resize(self.act(self.up2(self.act(self.up1(x))))))


class Conv1dNet(nn.Module):
    """1-D convolutions over a sequence (keyword spotting style), pooling, a classifier."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, stride=2, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.pool = nn.MaxPool1d(2)
        self.act = nn.PReLU()
        self.fc = nn.Linear(8 * 8, 5)

    def forward(self, x):
        x = self.pool(self.act(self.c2(self.act(self.c1(x)))))
        return self.fc(x.flatten(1))


class TokenMLP(nn.Module):
    """Linear layers on a 3-D [batch, tokens, features] input, with and without bias."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.up = nn.Linear(16, 48)
        self.act = nn.GELU()
        self.down = nn.Linear(48, 16, bias=False)

    def forward(self, x):
        return x + self.down(self.act(self.up(self.norm(x))))


class MHABlock(nn.Module):
    """``nn.MultiheadAttention`` returning its (head-averaged) attention weights."""

    def __init__(self, batch_first: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        y, _ = self.attn(x, x, x, need_weights=True)
        return self.out(y)


class BmmMixer(nn.Module):
    """Token mixing with an explicit ``torch.bmm`` (a Gram matrix) between activations."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 12)

    def forward(self, x):
        h = self.proj(x)
        gram = torch.bmm(h, h.transpose(1, 2))  # [B, L, L]
        return torch.bmm(gram.softmax(-1), x)


class EmbeddingClassifier(nn.Module):
    """Embedding look-up, mean over tokens, two Linear layers."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 12)
        self.fc1 = nn.Linear(12, 24)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(24, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.emb(x).mean(1))))


class ResidualNet(nn.Module):
    """Two basic residual blocks (conv-BN-ReLU, identity and projection shortcuts)."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
        self.shortcut = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.block1(x) + x)
        return self.relu(self.block2(x) + self.shortcut(x))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, two Linear layers, sigmoid gate multiplied in."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Linear(16, 4)
        self.act = nn.ReLU()
        self.expand = nn.Linear(4, 16)

    def forward(self, x):
        y = self.conv(x)
        gate = torch.sigmoid(self.expand(self.act(self.reduce(self.pool(y).flatten(1)))))
        return y * gate[:, :, None, None]


class SharedHead(nn.Module):
    """One Linear applied twice (weight sharing across calls)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.fc(x)))


TEST_MODELS = {
    "grouped_depthwise": (GroupedNet, (1, 3, 32, 32)),
    "dilated": (DilatedNet, (1, 3, 17, 19)),
    "transposed": (DecoderNet, (1, 8, 5, 6)),
    "conv1d": (Conv1dNet, (1, 4, 32)),
    "linear_3d_input": (TokenMLP, (2, 7, 16)),
    "mha_batch_first": (lambda: MHABlock(True), (2, 6, 16)),
    "mha_seq_first": (lambda: MHABlock(False), (6, 2, 16)),
    "einsum_attention": (partial(HandWrittenAttention, 16, 2), (2, 5, 16)),  # matmul scores, einsum values
    "bmm": (BmmMixer, (3, 6, 12)),
    "embedding_linear": (EmbeddingClassifier, "ids"),
    "residual": (ResidualNet, (1, 8, 10, 10)),
    "squeeze_excite": (SqueezeExcite, (2, 3, 9, 9)),
    "shared_linear": (SharedHead, (4, 10)),
}

SMALL_SIDE = 64

#: Zoo models slow enough (with three counters) to leave out of the default run.
SLOW_ZOO = {"vgg16", "googlenet", "resnet50", "alexnet", "caffenet"}


def _example(shape) -> torch.Tensor:
    if shape == "ids":
        return torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _zoo_input(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """A 64x64 image when the architecture accepts one (counting is about 10x faster than at
    224x224 and agreement does not depend on the resolution), else the published shape."""
    if len(shape) == 4 and shape[2] > SMALL_SIDE:
        small = _example((*shape[:2], SMALL_SIDE, SMALL_SIDE))
        try:
            with torch.no_grad():
                model(small)
            return small
        except RuntimeError:  # a classifier sized for the published resolution
            pass
    return _example(shape)


@lru_cache(maxsize=None)
def _case(name: str) -> tuple[nn.Module, torch.Tensor, dnnergy.Workload]:
    """(model, example input, dnnergy workload) for a test-model or zoo name, built once."""
    if name in TEST_MODELS:
        factory, shape = TEST_MODELS[name]
        torch.manual_seed(0)
        model, x = factory().eval(), _example(shape)
    else:
        model = zoo.create_model(name).eval()
        x = _zoo_input(model, zoo.model_info(name).input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the zoo's unsupported ops are tested elsewhere; MACs must agree anyway
        workload = dnnergy.trace(model, x)
    return model, x, workload


def _dnnergy_macs_under(workload: dnnergy.Workload, path: str) -> int:
    """MACs of the layers attributed to module ``path`` or any of its descendants."""
    return sum(
        layer.macs for layer in workload if not path or layer.module == path or layer.module.startswith(path + ".")
    )


# -- fvcore -------------------------------------------------------------------------------------------


def fvcore_macs_by_module(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """fvcore's conv/linear/matmul-type counts for every module (descendants included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings
        analysis = FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module = analysis.by_module_and_operator()
    return {name: int(sum(v for op, v in ops.items() if op in FVCORE_MAC_OPERATORS)) for name, ops in by_module.items()}


ALL_NAMES = list(TEST_MODELS) + [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_ZOO else n for n in zoo.list_models()
]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_fvcore_agrees_per_module(name):
    model, x, workload = _case(name)
    fv = fvcore_macs_by_module(model, x)
    assert fv[""] > 0
    mismatches = {path: (fv_macs, _dnnergy_macs_under(workload, path)) for path, fv_macs in fv.items() if fv_macs != _dnnergy_macs_under(workload, path)}
    assert not mismatches, f"module: (fvcore, dnnergy) {mismatches}"
    assert workload.macs == fv[""]


# -- ptflops, pytorch backend (per module) -------------------------------------------------------------


def _ptflops_mha_non_macs(mha: nn.MultiheadAttention, q: torch.Tensor) -> int:
    """What ptflops' MultiheadAttention hook adds besides MACs (self-attention, q = k = v)."""
    batch, length = (q.shape[0], q.shape[1]) if mha.batch_first else (q.shape[1], q.shape[0])
    dim = mha.embed_dim
    extra = length * dim  # query scaling
    if mha.in_proj_bias is not None:
        extra += 3 * length * dim  # q, k, v projection bias adds
    extra += mha.num_heads * length * length  # softmax
    extra += length * dim  # out-projection bias, counted by ptflops unconditionally
    return batch * extra


def _ptflops_extra(module: nn.Module, inputs: tuple, output) -> int:
    """Non-MAC work ptflops adds to one call of a MAC module: bias adds, attention extras."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and module.bias is not None:
        return output.numel()  # one bias add per output element
    if isinstance(module, nn.MultiheadAttention):
        return _ptflops_mha_non_macs(module, inputs[0])
    return 0


def ptflops_by_module(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[str, int, int]]:
    """``path -> (module type, ptflops count, count minus non-MAC extras)`` for hooked modules."""
    model = copy.deepcopy(model)
    extras: dict[str, int] = {}

    def record(path):
        def hook(module, inputs, output):
            extras[path] = extras.get(path, 0) + _ptflops_extra(module, inputs, output)
        return hook

    handles = [m.register_forward_hook(record(path)) for path, m in model.named_modules()]
    counter = add_flops_counting_methods(model)
    counter.start_flops_count(ost=io.StringIO(), verbose=False, ignore_list=[])
    try:
        with torch.no_grad():
            model(x)
        counts = {path: (type(m).__name__, int(m.__flops__)) for path, m in model.named_modules() if hasattr(m, "__flops__")}
    finally:
        counter.stop_flops_count()
        for handle in handles:
            handle.remove()
    return {path: (kind, flops, flops - extras[path]) for path, (kind, flops) in counts.items() if path in extras}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_ptflops_agrees_per_module(name):
    model, x, workload = _case(name)
    checked, mismatches = 0, {}
    for path, (kind, flops, macs) in ptflops_by_module(model, x).items():
        module = model.get_submodule(path)
        if isinstance(module, PTFLOPS_MAC_MODULES):
            got, expected = macs, _dnnergy_macs_under(workload, path)
        elif isinstance(module, PTFLOPS_ELEMENTWISE_MODULES):
            got, expected = flops, sum(layer.ops for layer in workload if layer.module == path)
        else:
            continue
        checked += 1
        if got != expected:
            mismatches[path] = (kind, got, expected)
    assert checked, "ptflops hooked no module of this model"
    assert not mismatches, f"module: (type, ptflops, dnnergy) {mismatches}"


# -- ptflops, aten backend (whole model, biases removed) ------------------------------------------------


def _without_biases(model: nn.Module) -> nn.Module:
    """A copy with every conv/linear/attention bias removed (ptflops' aten formulas add them)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            module.bias = None
        elif isinstance(module, nn.MultiheadAttention):
            module.in_proj_bias = None
    return model


def ptflops_aten_total(model: nn.Module, x: torch.Tensor) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, _ = get_model_complexity_info(
            _without_biases(model), tuple(x.shape[1:]), input_constructor=lambda _res: {"x": x},
            as_strings=False, print_per_layer_stat=False, backend="aten", ost=io.StringIO(),
        )
    assert macs is not None, "ptflops failed on the model"
    return int(macs)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_ptflops_aten_total_agrees_without_biases(name):
    model, x, workload = _case(name)
    fused = sum(layer.macs for layer in workload if layer.op.startswith(FUSED_ATTENTION))
    assert ptflops_aten_total(model, x) == workload.macs - fused


def test_the_comparison_sees_the_models_it_should():
    # guard against a vacuous comparison: fvcore finds the attention bmm and einsum
    fv = fvcore_macs_by_module(*_case("einsum_attention")[:2])
    # qkv 2*5*16*48 = 7680, q k^T and a v 2*2*5*5*8 = 800 each, proj 2*5*16*16 = 2560
    assert fv[""] == 7680 + 800 + 800 + 2560
    # ptflops adds a conv bias: 1*6*17*19 outputs of conv 'a' in DilatedNet (padding keeps 17x19)
    counts = ptflops_by_module(*_case("dilated")[:2])
    kind, flops, macs = counts["a"]
    assert flops - macs == 6 * 17 * 19


# -- the speed benchmark runs -------------------------------------------------------------------------


@pytest.mark.slow
def test_trace_speed_benchmark_quick_run(tmp_path):
    results = tmp_path / "results.md"
    results.write_text("# Benchmark results\n\n## Estimate speed\n\nkept\n\n## Trace speed\n\nstale\n\n## Other\n\nalso kept\n")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "trace_speed.py"
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--results", str(results)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "| dnnergy.trace (default: shapes only) |" in run.stdout and "| dnnergy.trace(compute=True) (real forward) |" in run.stdout
    assert "faster than fvcore" in run.stdout
    text = results.read_text()
    assert "stale" not in text and "kept" in text and "also kept" in text
    assert text.count("## Trace speed") == 1
    # LeNet-5: 2,293,000 MACs (conv 1,888,000 + fc 405,000), reported by dnnergy and fvcore alike
    assert "| dnnergy.trace (default: shapes only) |" in text and "2,293,000 |" in text
