"""Long runs resume: a run killed after a finished step and started again with --resume ends as an uninterrupted run.

Each CLI case starts a real ``python -m dnnergy`` process on a tiny MLP and the synthetic
data set, SIGKILLs it as soon as its first checkpoint file appears, resumes it (in this
process, through the same ``main``) and compares the result with an uninterrupted run of
the same command: the saved weights bit for bit and the record or points as JSON, timing
fields removed. The reference the resumed run is checked against is that independent,
uninterrupted run, never the checkpoint's own content.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, Masks
from dnnergy.compress.checkpoint import Checkpoint, checkpoint_of, model_tensors, restore_model
from dnnergy.data import load_dataset
from dnnergy.errors import UserInputError
from dnnergy.explore import elimination_sweep
from dnnergy.io import read_container, write_container

FACTORY = """
import torch.nn as nn

def tiny_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))

tiny_mlp.input_shape = (1, 1, 8, 8)
"""
SPEC = "resume_models:tiny_mlp"


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data):
    """A folder with the factory module and trained weights (``w.pt``): no run trains or imports anything else."""
    folder = tmp_path_factory.mktemp("resume")
    (folder / "resume_models.py").write_text(textwrap.dedent(FACTORY))
    sys.path.insert(0, str(folder))
    import resume_models

    torch.manual_seed(0)
    model = resume_models.tiny_mlp()
    x, y = data.train.tensors
    for _ in range(60):  # full-batch gradient descent: no torch.optim import
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= 0.5 * param.grad
    torch.save(model.state_dict(), folder / "w.pt")
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("resume_models", None)


#: ``python -m dnnergy`` whose checkpoints pause 60 s after being written, so that a signal sent when the
#: first one appears always lands mid-run (a tiny run can otherwise finish first on a fast machine). Ctrl-C
#: is made to raise KeyboardInterrupt as in a terminal: a shell that starts the test suite in the
#: background hands its children SIGINT ignored, and Python then keeps it ignored.
PAUSING_DNNERGY = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from dnnergy.compress.checkpoint import Checkpoint
    from dnnergy.cli import main

    write = Checkpoint.save
    def save_then_pause(self, *args, **kwargs):
        path = write(self, *args, **kwargs)
        time.sleep(60)
        return path
    Checkpoint.save = save_then_pause
    sys.argv[0] = "dnnergy"
    main()
""")


def _start(workdir: Path, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "DNNERGY_CACHE_DIR": str(workdir / "cache")}
    return subprocess.Popen([sys.executable, "-c", PAUSING_DNNERGY, *argv], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(process: subprocess.Popen, path: Path, timeout: float = 300.0) -> None:
    """Poll until ``path`` exists (the first finished step); fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended (status {process.returncode}) before its first checkpoint:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no checkpoint {path} after {timeout} s")
        time.sleep(0.005)


def _killed(workdir: Path, argv: list[str], checkpoint: Path) -> None:
    """Run ``dnnergy argv`` and SIGKILL it right after its first checkpoint appears."""
    process = _start(workdir, argv)
    _wait_for(process, checkpoint)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert checkpoint.exists()


def _same_model(a: Path, b: Path) -> None:
    first, second = dnnergy.load(a, architecture=SPEC), dnnergy.load(b, architecture=SPEC)  # files name no code to run
    sa, sb = first.model.state_dict(), second.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    ra, rb = first.record.to_dict(), second.record.to_dict()
    assert ra.pop("seconds") >= 0 and rb.pop("seconds") >= 0
    assert ra == rb


COMMON = ["--weights", "w.pt", "--data", "synthetic"]


@pytest.mark.parametrize(("name", "argv"), [
    ("eap", ["compress", SPEC, *COMMON, "--method", "eap", "--max-iterations", "2", "--calibration", "256", "--epochs", "1",
             "--max-accuracy-drop", "3"]),
    ("eliminate", ["compress", SPEC, *COMMON, "--method", "eliminate", "--layer", "1,3", "--steps", "16",
                   "--samples", "256", "--max-accuracy-drop", "3", "--epochs", "0"]),
    ("netadapt", ["adapt", SPEC, *COMMON, "--budget", "macs=0.5", "--step", "0.1", "--short-term", "128", "--epochs", "1"]),
])
@pytest.mark.slow  # a killed subprocess and two runs
def test_a_killed_run_resumes_to_the_uninterrupted_result(workdir, cli, monkeypatch, name, argv):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(workdir / "cache"))
    out, reference = workdir / f"{name}.dnnergy", workdir / f"{name}-reference.dnnergy"
    checkpoint = workdir / f"{name}.dnnergy.checkpoint"
    _killed(workdir, [*argv, "--out", str(out)], checkpoint)
    assert not out.exists()  # killed mid-run, not after its end
    code, _, err = cli(*argv, "--out", str(out))  # without --resume the checkpoint is not overwritten
    assert code == 2 and "holds an interrupted run: add --resume" in err
    code, _, err = cli(*argv, "--out", str(out), "--resume")
    assert code == 0, err
    assert not checkpoint.exists()  # deleted once the outputs are written
    code, _, err = cli(*argv, "--out", str(reference), "--resume")  # nothing to resume: starts from the beginning
    assert code == 0, err
    assert f"note: no checkpoint at {reference}.checkpoint; starting from the beginning" in err
    _same_model(out, reference)
    if name == "netadapt":
        assert (json.loads((workdir / f"{name}.dnnergy.history.json").read_text())
                == json.loads((workdir / f"{name}-reference.dnnergy.history.json").read_text()))


@pytest.mark.slow  # a killed subprocess and two runs
def test_a_killed_tradeoff_sweep_resumes_to_the_same_points(workdir, cli, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(workdir / "cache"))
    argv = ["tradeoff", SPEC, *COMMON, "--method", "magnitude", "--strengths", "0.5,0.7,0.8,0.9", "--epochs", "1", "--json"]
    checkpoint = workdir / "sweep.checkpoint"
    _killed(workdir, [*argv, "--checkpoint", str(checkpoint)], checkpoint)
    assert 1 <= len(read_container(checkpoint, kind="checkpoint").header["state"]["points"]) < 4  # killed mid-sweep
    code, resumed, err = cli(*argv, "--checkpoint", str(checkpoint), "--resume")
    assert code == 0, err
    assert not checkpoint.exists()
    code, uninterrupted, err = cli(*argv)
    assert code == 0, err

    def timeless(text: str) -> dict:
        result = json.loads(text)
        for point in result["points"]:
            assert point.pop("latency_s") > 0  # measured on this CPU: the one field that may differ
        return result

    assert timeless(resumed) == timeless(uninterrupted)


@pytest.mark.slow  # a killed subprocess and two runs
def test_sigint_leaves_the_checkpoint_and_exits_130_with_one_line(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    out = workdir / "interrupted.dnnergy"
    checkpoint = workdir / "interrupted.dnnergy.checkpoint"
    process = _start(workdir, ["compress", SPEC, *COMMON, "--method", "eap", "--max-iterations", "2", "--calibration", "256",
                               "--epochs", "1", "--max-accuracy-drop", "3", "--out", str(out)])
    _wait_for(process, checkpoint)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == (f"interrupted: progress up to the last finished step is in {checkpoint}; "
                                            "run the same command with --resume to continue")
    assert "Traceback" not in err and checkpoint.exists() and not out.exists()
    assert read_container(checkpoint, kind="checkpoint").header["state"]["position"] >= 1


# -- in-process: the checkpoint itself ------------------------------------------------------------------
def _context(data, **changes) -> CompressionContext:
    return CompressionContext(data, fine_tuning=None, **changes)


def test_checkpoint_round_trip_restores_state_model_masks_and_generators(tmp_path, data):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    Masks(model, reversible=False).set("0.weight", torch.tensor([[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=torch.bool))
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint = checkpoint_of(_context(data, checkpoint=tmp_path / "c.ckpt"), "demo", model, {"k": (1, 2)})
    assert checkpoint.load() is None  # no file yet
    records, tensors = model_tensors(model, "model/")
    checkpoint.save({"step": 4, "points": [{"a": 0.25}]}, tensors)
    expected = (torch.rand(3), np.random.rand(3), random.random())  # what the generators give after the save
    with torch.no_grad():
        model[0].weight.fill_(7.0)
        model[2].bias.zero_()
    for _ in range(5):
        torch.rand(2), np.random.rand(2), random.random()
    progress = checkpoint.load()
    assert progress.state == {"step": 4, "points": [{"a": 0.25}]}
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    restore_model(model, records, progress.tensors, "model/")
    for key, value in saved.items():
        assert torch.equal(model.state_dict()[key], value), key
    keep = Masks(model, reversible=False)["0.weight"]
    assert int(keep.sum()) == 8  # 4 of 12 weights masked, and the mask is a live transform again
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    Masks(model, reversible=False).apply()
    assert int(model[0].weight.count_nonzero()) == 8


@pytest.mark.parametrize(("field", "other"), [
    ("params", lambda ctx, model: ("demo", model, {"k": 3})),
    ("run", lambda ctx, model: ("other", model, {"k": 2})),
    ("model", lambda ctx, model: ("demo", nn.Linear(4, 2), {"k": 2})),
    ("seed", lambda ctx, model: ("demo", model, {"k": 2}, ctx.replace(seed=1))),
    ("energy", lambda ctx, model: ("demo", model, {"k": 2}, ctx.replace(energy=lambda m: 1.0))),
])
def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(tmp_path, data, field, other):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    context = _context(data, checkpoint=tmp_path / "c.ckpt")
    checkpoint_of(context, "demo", model, {"k": 2}).save({"step": 1})
    run, changed_model, params, *rest = other(context, model)
    with pytest.raises(UserInputError, match=rf"c\.ckpt: checkpoint of another run \({field}: saved .*delete it to start over"):
        checkpoint_of(rest[0] if rest else context, run, changed_model, params).load()


def test_a_file_of_another_kind_is_refused(tmp_path, data):
    path = tmp_path / "model.dnnergy"
    write_container(path, "model", {}, {})
    with pytest.raises(UserInputError, match="is a model file, expected checkpoint"):
        Checkpoint(path, {"run": "x"}).load()


def test_an_interrupted_elimination_sweep_resumes_to_the_same_points(tmp_path, data, monkeypatch, workdir):
    """Library API: ``context.checkpoint``; the interruption is a KeyboardInterrupt raised right after the 2nd save."""
    import resume_models

    model = resume_models.tiny_mlp()
    model.load_state_dict(torch.load(workdir / "w.pt", weights_only=True))
    context = CompressionContext.build(data, max_accuracy_drop=0.05, fine_tuning=None)
    uninterrupted = elimination_sweep(model, context, "1", step=3, samples=256)
    assert len(uninterrupted) >= 4
    context = context.replace(checkpoint=tmp_path / "sweep.ckpt")
    save, saves = Checkpoint.save, []

    def interrupted(self, *args, **kwargs):
        saves.append(save(self, *args, **kwargs))
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        elimination_sweep(model, context, "1", step=3, samples=256)
    monkeypatch.setattr(Checkpoint, "save", save)
    resumed = elimination_sweep(model, context, "1", step=3, samples=256)
    assert [p.to_dict() for p in resumed] == [p.to_dict() for p in uninterrupted]
    again = elimination_sweep(model, context, "1", step=3, samples=256)  # a finished checkpoint returns at once
    assert [p.to_dict() for p in again] == [p.to_dict() for p in uninterrupted]


def test_resume_refuses_a_method_that_saves_no_checkpoints(cli):
    code, _, err = cli("compress", "lenet300", "--method", "magnitude", "--resume", "--out", "x.dnnergy")
    assert code == 2 and "magnitude saves no checkpoints (one of eap, eliminate, netadapt alone does)" in err
    code, _, err = cli("compress", "lenet300", "--method", "eap", "--resume")
    assert code == 2 and "--resume needs to know where the checkpoint is" in err
