"""Start-up cost (issue 13): help, version, the listings (``zoo``, ``methods``) and a bare ``import dnnergy``
must not import torch or scipy,
and a small ``dnnergy estimate`` must not import torch._dynamo or sympy (a real forward, not meta kernels).

Each check runs in a fresh interpreter (this test process has long imported torch) and
reads ``sys.modules`` after the command returns. Wall times are measured by
benchmarks/startup.py, not asserted here (a shared machine makes them noisy).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "scipy", "pandas", "matplotlib", "onnx", "constriction", "tensorly")

#: In a subprocess: every command's --help, the bare command, --help and --version; after
#: each, the heavy modules imported so far and the start of what it printed (JSON [argv, modules, text]).
PROBE = textwrap.dedent(f"""
    import io, json, sys
    from contextlib import redirect_stderr, redirect_stdout
    import typer
    from dnnergy.cli import app, main

    names = sorted(typer.main.get_command(app).commands)
    runs = [[], ["--help"], ["--version"]] + [[name, "--help"] for name in names]
    seen = []
    for argv in runs:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            try:
                main(argv)
            except SystemExit:
                pass
        seen.append([argv, [m for m in {HEAVY!r} if m in sys.modules], out.getvalue()[:200]])
    print(json.dumps(seen))
""")


def _run(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow  # subprocesses
def test_help_and_version_never_import_torch():
    seen = json.loads(_run(PROBE))
    commands = {argv[0] for argv, _, _ in seen if len(argv) == 2 and argv[1] == "--help"}
    # every command of the CLI is checked (these seven at least; others added later are too)
    assert {"summary", "zoo", "estimate", "methods", "compress", "tradeoff", "demo", "adapt"} <= commands
    for argv, heavy, out in seen:
        assert heavy == [], f"dnnergy {' '.join(argv)} imported {heavy}"
        assert out.strip(), f"dnnergy {' '.join(argv)} printed nothing"
    version = next(out for argv, _, out in seen if argv == ["--version"])
    assert version.startswith("dnnergy ")


#: In a subprocess: ``python -m dnnergy ARGV`` (as runpy runs it), then the heavy modules it left in
#: ``sys.modules`` and what it printed (JSON [modules, text]).
LISTING = textwrap.dedent(f"""
    import io, json, runpy, sys
    from contextlib import redirect_stdout
    sys.argv = ["dnnergy", *json.loads(sys.argv[1])]
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            runpy.run_module("dnnergy", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            assert not exc.code, exc.code
    print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules], out.getvalue()]))
""")


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("argv", [["methods"], ["methods", "q*"], ["zoo"]])
def test_listings_never_import_torch(argv, monkeypatch):
    # `dnnergy zoo` and `dnnergy methods` answer from dnnergy/catalog_data.py (plain data), not by importing every
    # model and method (torch); what they print is what the registries give (tests/cli/test_catalog.py)
    from typer.testing import CliRunner

    from dnnergy.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    heavy, out = json.loads(_run(LISTING, json.dumps(argv)))
    assert heavy == [], f"python -m dnnergy {' '.join(argv)} imported {heavy}"
    assert out == CliRunner().invoke(app, argv).output and out.strip()


def test_import_dnnergy_is_light():
    code = f"import sys, dnnergy; print([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code).strip() == "[]"


def test_errors_import_alone():
    code = f"import sys; from dnnergy import UserInputError, DnnergyError; print([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code).strip() == "[]"


@pytest.mark.slow  # subprocesses
def test_small_estimate_skips_the_meta_kernel_imports():
    # a one-shot `dnnergy estimate lenet5` traces with a real forward (13 ms) instead of torch's meta kernels,
    # whose first use imports torch._dynamo and sympy (about one more `import torch`); the report must be the
    # one a shapes-only trace gives, and its MACs the published LeNet-5 count (seed 002: 2,293K)
    code = textwrap.dedent("""
        import io, json, sys
        from contextlib import redirect_stdout
        from dnnergy.cli import main
        out = io.StringIO()
        with redirect_stdout(out):
            try:
                main(["estimate", "lenet5", "--json"])
            except SystemExit:
                pass
        loaded = [m for m in ("torch._dynamo", "sympy") if m in sys.modules]
        import dnnergy
        from dnnergy.zoo import create_model
        shapes = dnnergy.estimate(dnnergy.trace(create_model("lenet5"), (1, 1, 28, 28), name="lenet5", compute=False), "eyeriss", "row_stationary")
        print(json.dumps({"loaded": loaded, "cli": json.loads(out.getvalue()), "shapes": json.loads(shapes.to_json())}))
    """)
    seen = json.loads(_run(code))
    assert seen["loaded"] == []
    assert seen["cli"] == seen["shapes"]
    assert seen["cli"]["by_level"]["MAC"] == 2_293_000


def test_real_forward_only_for_small_work():
    from torch import nn

    from dnnergy import zoo
    from dnnergy.cli._resolve import REAL_FORWARD_MACS, Resolved, _compute_mode

    assert REAL_FORWARD_MACS == 10**10
    resnet = zoo.create_model("resnet50")  # published 4.1 G MACs per 3x224x224 image
    assert _compute_mode("resnet50", Resolved(resnet, (1, 3, 224, 224), "resnet50")) is True
    assert _compute_mode("resnet50", Resolved(resnet, (3, 3, 224, 224), "resnet50")) is None  # 12.3 G
    # not a zoo name: parameters x input elements, 1,001,000 x 1,000 per row
    fc = nn.Linear(1000, 1000)
    assert _compute_mode("pkg.mod:fc", Resolved(fc, (9, 1000), "fc")) is True  # 9.0 G
    assert _compute_mode("pkg.mod:fc", Resolved(fc, (10, 1000), "fc")) is None  # 10.01 G
