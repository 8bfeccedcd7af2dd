"""Every registered model builds, runs, and traces to the MACs and parameters its paper reports.

Expected figures come from the papers' tables or from arithmetic written out below (one
MAC per filter tap per output pixel, biases not counted, as ``dnnergy.trace`` counts);
never from the zoo's own code. Each figure carries its source and a relative tolerance:
0 for exact counts, otherwise the rounding of the published number plus any known
difference between the paper's network and the released one (said in the comment).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dnnergy
from dnnergy.workload import OpKind, Workload
from dnnergy.zoo import create_model, list_models, model_info
from dnnergy.zoo._layers import channel_shuffle
from dnnergy.zoo.shufflenet import ShuffleNetV1


@dataclass(frozen=True)
class Figure:
    value: float
    rtol: float  # 0: exact
    source: str


def _conv(cin: int, cout: int, k: int, out: int, groups: int = 1, bias: bool = True) -> tuple[int, int, int]:
    """(weights, biases, MACs) of a k x k conv producing an out x out map."""
    weights = cout * (cin // groups) * k * k
    return weights, cout if bias else 0, weights * out * out


def _fc(cin: int, cout: int) -> tuple[int, int, int]:
    return cin * cout, cout, cin * cout


def _total(parts: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(weights, params, MACs) of a list of (weights, biases, MACs)."""
    weights = sum(p[0] for p in parts)
    return weights, weights + sum(p[1] for p in parts), sum(p[2] for p in parts)


# -- arithmetic from the papers' layer tables --------------------------------------------

# CaffeNet / AlexNet (seed 002 table; maps 55, 27, 13, 13, 13; groups 2 on conv2, 4, 5):
# conv1 34,848 w x 55*55 = 105,415,200; conv2 307,200 x 27*27 = 223,948,800;
# conv3 884,736 x 169 = 149,520,384; conv4 663,552 x 169 = 112,140,288;
# conv5 442,368 x 169 = 74,760,192; fc 37,748,736 + 16,777,216 + 4,096,000.
CAFFENET = _total([
    _conv(3, 96, 11, 55), _conv(96, 256, 5, 27, groups=2), _conv(256, 384, 3, 13),
    _conv(384, 384, 3, 13, groups=2), _conv(384, 256, 3, 13, groups=2),
    _fc(9216, 4096), _fc(4096, 4096), _fc(4096, 1000),
])
assert CAFFENET == (60_954_656, 60_965_224, 724_406_816)

# VGG-16, configuration D (Simonyan & Zisserman Table 1): conv widths per 224/112/56/28/14 map.
VGG16 = _total(
    [_conv(cin, cout, 3, size) for size, widths in ((224, (3, 64, 64)), (112, (64, 128, 128)), (56, (128, 256, 256, 256)),
                                                    (28, (256, 512, 512, 512)), (14, (512, 512, 512, 512)))
     for cin, cout in zip(widths, widths[1:])]
    + [_fc(25088, 4096), _fc(4096, 4096), _fc(4096, 1000)]
)

# GoogLeNet (Szegedy et al. Table 1 columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj),
# with the spatial size each module runs at.
_INCEPTION = [
    (192, 28, (64, 96, 128, 16, 32, 32)), (256, 28, (128, 128, 192, 32, 96, 64)),
    (480, 14, (192, 96, 208, 16, 48, 64)), (512, 14, (160, 112, 224, 24, 64, 64)), (512, 14, (128, 128, 256, 24, 64, 64)),
    (512, 14, (112, 144, 288, 32, 64, 64)), (528, 14, (256, 160, 320, 32, 128, 128)),
    (832, 7, (256, 160, 320, 32, 128, 128)), (832, 7, (384, 192, 384, 48, 128, 128)),
]
GOOGLENET = _total(
    [_conv(3, 64, 7, 112), _conv(64, 64, 1, 56), _conv(64, 192, 3, 56)]
    + [part for cin, s, (c1, r3, c3, r5, c5, pp) in _INCEPTION
       for part in (_conv(cin, c1, 1, s), _conv(cin, r3, 1, s), _conv(r3, c3, 3, s), _conv(cin, r5, 1, s), _conv(r5, c5, 5, s), _conv(cin, pp, 1, s))]
    + [_fc(1024, 1000)]
)


def _fire(cin: int, s: int, e: int) -> list[tuple[int, int, int]]:
    return [(cin * s, s, 0), (s * e, e, 0), (9 * s * e, e, 0)]  # parameters only


# SqueezeNet (Iandola et al. Table 1: Fire squeeze/expand widths; v1.1 from the repository).
_FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
SQUEEZE_PARAMS = {
    name: _total([_conv(3, first, k, 1)] + [p for cin, (s, e) in zip([first, 128, 128, 256, 256, 384, 384, 512], _FIRES) for p in _fire(cin, s, e)]
                 + [_conv(512, 1000, 1, 1)])[1]
    for name, first, k in (("squeezenet1_0", 96, 7), ("squeezenet1_1", 64, 3))
}
assert SQUEEZE_PARAMS["squeezenet1_0"] == 1_248_424  # the paper's Table 1 total

# ViT (vit_tiny): T = 65 tokens (8*8 patches + class token), D = 192, 3 heads of 64, MLP 384, 6 blocks.
#   patch conv 4x4/4, 3 -> 192 on an 8x8 grid: 192*48*64 = 589,824 MACs; 9,216 w + 192 b
#   per block: qkv 65*192*576 = 7,188,480; q@k^T 3*65*65*64 = 811,200; (attn)@v 811,200;
#              proj 65*192*192 = 2,396,160; fc1 65*192*384 = 4,792,320; fc2 4,792,320
#              = 20,791,680 MACs; params LN 384 + qkv 110,592+576 + proj 36,864+192 + LN 384
#              + fc1 73,728+384 + fc2 73,728+192 = 297,024
#   head on the class token 192*10 = 1,920 MACs; 1,930 params; final LN 384
#   class token 192, position embedding 65*192 = 12,480
VIT_MACS = 589_824 + 6 * 20_791_680 + 1_920
VIT_PARAMS = 9_408 + 192 + 12_480 + 6 * 297_024 + 384 + 1_930

SEED_002 = "seed 002 (Zhang, Davoodi, Hu) table"
#: (count, expected figure) pairs per model; count is "macs", "params" or "weights".
EXPECTED: dict[str, list[tuple[str, Figure]]] = {
    "lenet300": [
        # 784*300 + 300*100 + 100*10 = 266,200 (seed 002: #Edges 266K, #Parm 266K; Han 2015: 267K with biases)
        ("macs", Figure(266_200, 0, SEED_002)), ("weights", Figure(266_200, 0, SEED_002)),
        ("params", Figure(266_200 + 410, 0, "266,200 weights + 300 + 100 + 10 biases")),
    ],
    # distillation students (issue 12), counted by hand
    "lenet100": [("macs", Figure(79_400, 0, "784*100 + 100*10")), ("weights", Figure(79_400, 0, "784*100 + 100*10")),
                 ("params", Figure(79_510, 0, "79,400 weights + 100 + 10 biases"))],
    "lenet64": [("macs", Figure(52_544, 0, "784*64 + 64*32 + 32*10")),
                ("weights", Figure(52_544, 0, "784*64 + 64*32 + 32*10")),
                ("params", Figure(52_650, 0, "52,544 weights + 64 + 32 + 10 biases"))],
    "lenet5": [
        # conv1 20*25*24*24 = 288,000; conv2 50*500*8*8 = 1,600,000; fc1 800*500; fc2 500*10: 2,293,000 = #Edges 2293K
        ("macs", Figure(2_293_000, 0, SEED_002)),
        # 500 + 25,000 + 400,000 + 5,000 = 430,500 weights; + 20 + 50 + 500 + 10 biases = 431,080 (#Parm 431K)
        ("weights", Figure(430_500, 0, SEED_002)), ("params", Figure(431_080, 0, SEED_002)),
    ],
    "cifar10_quick": [
        # 2400*32*32 + 25600*16*16 + 51200*8*8 + 10240 = 12,298,240 (#Edges 12.3M; needs ceil-mode pools)
        ("macs", Figure(12_298_240, 0, SEED_002)), ("weights", Figure(89_440, 0, SEED_002 + " (#Parm 89.4K)")),
        ("params", Figure(89_440 + 138, 0, "89,440 weights + 32 + 32 + 64 + 10 biases")),
    ],
    **{
        name: [
            ("macs", Figure(CAFFENET[2], 0, "arithmetic above")), ("params", Figure(CAFFENET[1], 0, "arithmetic above")),
            # seed 002: CaffeNet #Edges 724M, #Parm 61M (to the rounding of the last digit)
            ("macs", Figure(724e6, 0.5e6 / 724e6, SEED_002)), ("params", Figure(61e6, 0.5e6 / 61e6, SEED_002)),
        ]
        for name in ("caffenet", "alexnet")
    },
    "vgg16": [
        ("macs", Figure(VGG16[2], 0, "arithmetic above")), ("params", Figure(VGG16[1], 0, "arithmetic above")),
        # seed 001 (Kim et al. ICLR 2016): VGG-16 138M weights, 15484M FLOPs (mult-adds)
        ("macs", Figure(15_484e6, 0.002, "seed 001")), ("params", Figure(138e6, 0.5e6 / 138e6, "seed 001")),
    ],
    "googlenet": [
        ("macs", Figure(GOOGLENET[2], 0, "arithmetic above")), ("params", Figure(GOOGLENET[1], 0, "arithmetic above")),
        # seed 001 (Kim et al.): 6.9M weights, 1566M FLOPs for Caffe's GoogLeNet; they differ from the
        # 1,582,671,872 MACs and 6,998,552 parameters above by 1.1% and 1.4%. (Szegedy et al.'s own
        # Table 1 is not consistent with its layers: it lists conv1 at 2.7K params and 34M ops, vs
        # 9,408 weights and 118M MACs for 7x7x3x64 at 112x112.)
        ("macs", Figure(1566e6, 0.015, "seed 001")), ("params", Figure(6.9e6, 0.015, "seed 001")),
    ],
    "squeezenet1_0": [
        # seed 004: SqueezeNet 0.84 GFLOPS (convnet-burden, mult-adds); ours is at 224x224 (conv1 109x109), 2.5% below.
        ("macs", Figure(0.84e9, 0.03, "seed 004")),
        ("params", Figure(SQUEEZE_PARAMS["squeezenet1_0"], 0, "Iandola et al. Table 1: 1,248,424")),
    ],
    "squeezenet1_1": [
        # DeepScale/SqueezeNet v1.1 README: 0.72 GFLOPS/image = 0.36G MACs ("2.4x less than v1.0"); 3% below at 224.
        ("macs", Figure(0.36e9, 0.05, "SqueezeNet v1.1 README")),
        ("params", Figure(SQUEEZE_PARAMS["squeezenet1_1"], 0, "Fire widths of the v1.1 prototxt (1.236M in the ONNX zoo)")),
    ],
    "mobilenet_v1": [
        # Howard et al. Table 8 / seed 004: 569 million mult-adds, 4.2 million parameters (BN adds 0.5% here).
        ("macs", Figure(569e6, 0.001, "MobileNet paper Table 8")), ("params", Figure(4.2e6, 0.012, "MobileNet paper Table 8")),
    ],
    "mobilenet_v2": [
        # Sandler et al. Table 4: 300M multiply-adds, 3.4M parameters (3,504,872 with BN and biases: 3.1% above).
        ("macs", Figure(300e6, 0.005, "MobileNetV2 paper Table 4")), ("params", Figure(3.4e6, 0.035, "MobileNetV2 paper Table 4")),
    ],
    "shufflenet": [
        # Zhang et al. Table 1 (1x, g=3): 137 MFLOPs (mult-adds); megvii ShuffleNet-Series: 1.9M parameters.
        ("macs", Figure(137e6, 0.01, "ShuffleNet paper Table 1")), ("params", Figure(1.9e6, 0.025, "megvii-model/ShuffleNet-Series")),
    ],
    "resnet18": [
        # He et al. Table 1: 1.8 x 10^9 FLOPs (mult-adds); 11,689,512 parameters (torchvision model card).
        ("macs", Figure(1.8e9, 0.01, "ResNet paper Table 1")), ("params", Figure(11_689_512, 0, "torchvision resnet18")),
    ],
    "resnet50": [
        # v1.5 (stride on the 3x3): 4.1G MACs in torchvision/fvcore; 25,557,032 parameters (torchvision model card).
        ("macs", Figure(4.1e9, 0.005, "torchvision/fvcore ResNet-50")), ("params", Figure(25_557_032, 0, "torchvision resnet50")),
    ],
    "vit_tiny": [
        ("macs", Figure(VIT_MACS, 0, "arithmetic above")), ("params", Figure(VIT_PARAMS, 0, "arithmetic above")),
    ],
}

@functools.lru_cache(maxsize=None)
def traced(name: str) -> Workload:
    """The workload of a freshly built model at its registered input shape, traced once per session."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # an uncounted op would warn: fail loudly instead
        return dnnergy.trace(create_model(name), model_info(name).input_shape, name=name)


def _value(workload: Workload, key: str) -> int:
    return {"macs": workload.macs, "params": workload.params, "weights": workload.weights}[key]


@pytest.mark.parametrize("name", list_models())
def test_model_builds_and_runs_at_its_input_shape(name):
    # The trace ran the real forward pass; its last op produces the class scores of one image.
    info = model_info(name)
    classes = 10 if info.input_shape[-1] in (28, 32) else 1000  # MNIST/CIFAR vs ImageNet heads
    assert info.input_shape[0] == 1
    assert traced(name).input_shapes == (info.input_shape,)
    assert traced(name).layers[-1].ofmap == classes


@pytest.mark.parametrize("name", list_models())
def test_traced_counts_match_published(name):
    assert name in EXPECTED, f"add the published MACs/params of {name!r} (with their source) to EXPECTED"
    workload = traced(name)
    for key, figure in EXPECTED[name]:
        got = _value(workload, key)
        assert abs(got - figure.value) <= figure.rtol * figure.value, f"{name} {key}: traced {got:,} vs {figure.value:,.0f} ({figure.source})"


@pytest.mark.parametrize("name", list_models())
def test_registry_published_figures_agree_with_trace(name):
    published = model_info(name).published
    assert published.get("source") and "macs" in published and ("params" in published or "weights" in published)
    workload = traced(name)
    for key in ("macs", "params", "weights"):
        if key in published:
            assert abs(_value(workload, key) - published[key]) <= 0.05 * published[key], (name, key)


@pytest.mark.parametrize("name", list_models())
def test_trace_counts_every_op(name):
    workload = traced(name)
    assert [u.op for u in workload.unsupported] == []


def test_lrn_is_one_norm_layer_with_its_window_sum():
    # nn.LocalResponseNorm(5) on AlexNet's 96x55x55 conv1 output, per element: a square,
    # 5 window adds, scale, shift, power, divide: 96 * 55 * 55 x 10 = 2,904,000 ops.
    lrns = [layer for layer in traced("alexnet") if layer.op == "nn.LocalResponseNorm"]
    assert lrns[0].ops == 96 * 55 * 55 * 10


def test_alexnet_normalizes_before_pooling_caffenet_after():
    # The LRN's squaring runs on the 55x55x96 map in AlexNet (96*55*55 = 290,400) and on the
    # pooled 27x27x96 map in CaffeNet (96*27*27 = 69,984); MACs and parameters are identical.
    first_square = {n: next(layer for layer in traced(n) if layer.op == "nn.LocalResponseNorm") for n in ("alexnet", "caffenet")}
    assert first_square["alexnet"].ifmap == 290_400
    assert first_square["caffenet"].ifmap == 69_984


def test_cifar10_quick_map_sizes():
    # Ceil-mode 3x3/2 pools: 32 -> 16 -> 8 -> 4 (floor mode would give 15, 7, 3).
    convs = traced("cifar10_quick").of_kind(OpKind.CONV)
    assert [(c.E, c.M) for c in convs] == [(32, 32), (16, 32), (8, 64)]
    assert traced("cifar10_quick").of_kind(OpKind.FC)[0].C == 4 * 4 * 64


def test_mobilenet_v1_layer_table():
    # Howard et al. Table 1: 1 full conv, 13 depthwise (groups == C), 13 pointwise, 1 FC 1024x1000.
    convs = traced("mobilenet_v1").of_kind(OpKind.CONV)
    depthwise = [c for c in convs if c.groups == c.C == c.M and c.groups > 1]
    assert (len(convs), len(depthwise)) == (27, 13)
    assert [c.E for c in depthwise] == [112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7]


def test_vit_attention_is_two_activation_matmuls_per_block():
    matmuls = traced("vit_tiny").of_kind(OpKind.MATMUL)
    assert len(matmuls) == 12
    assert all(m.macs == 811_200 and not m.weight_is_param and m.groups == 3 for m in matmuls)  # 3*65*65*64


@pytest.mark.parametrize("groups, mflops", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_shufflenet_complexity_per_group_count(groups, mflops):
    # ShuffleNet paper Table 1, "Complexity" row for 1x width (FLOPs = mult-adds), rounded to 1M.
    macs = dnnergy.trace(ShuffleNetV1(groups), (1, 3, 224, 224)).macs
    assert abs(macs - mflops * 1e6) <= 0.015 * mflops * 1e6


def test_resnet50_paper_variant():
    # He et al. Table 1: 3.8 x 10^9 for the original ResNet-50 (stride on the first 1x1); same parameters.
    workload = dnnergy.trace(create_model("resnet50", stride_on_3x3=False), (1, 3, 224, 224))
    assert abs(workload.macs - 3.8e9) <= 0.02 * 3.8e9
    assert workload.params == 25_557_032


def test_factory_kwargs_reach_the_model():
    assert create_model("lenet300", num_classes=7)(torch.zeros(2, 1, 28, 28)).shape == (2, 7)
    assert create_model("vit_tiny", num_classes=100)(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6))
def test_channel_shuffle_is_a_transpose_permutation(groups, per_group):
    # Channel g*per_group + i moves to i*groups + g; shuffling back with per_group groups inverts it.
    c = groups * per_group
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(2, c, 3, 3).contiguous()
    y = channel_shuffle(x, groups)
    expected = [g * per_group + i for i in range(per_group) for g in range(groups)]
    assert y[0, :, 0, 0].tolist() == expected
    assert torch.equal(channel_shuffle(y, per_group), x)
