"""Start-up time of the ``dnnergy`` command (issue 13): wall-clock seconds against a bare ``import torch``.

Each command runs in a fresh subprocess, ``--repeat`` times, the commands taking turns so
a burst of load on a shared machine hits all of them alike; the best (smallest) time of
each is reported, in seconds and as a ratio to ``python -c "import torch"`` measured in
the same run. Commands: ``dnnergy --help``, ``dnnergy zoo`` and ``dnnergy methods`` (listings
from a plain-data catalogue, no torch), ``dnnergy estimate lenet5 --json`` and
``dnnergy estimate resnet50 --json`` (a trace of a 25M-parameter network). The target
of issue 13 is ``estimate lenet5`` within 1.5x the torch import. A separate subprocess
runs the command line's ``main(["--help"])`` and reports whether torch was imported.

    python benchmarks/startup.py [--repeat 5] [--out benchmarks/results.md] [--quick]

``--quick`` (for the test suite) runs each command once and skips resnet50. Every command
first runs once untimed. The subprocesses write and read compiled bytecode under
``--pycache`` (``PYTHONPYCACHEPREFIX``, outside the source tree; ``PYTHONDONTWRITEBYTECODE``
is dropped), as an installed package has its ``.pyc`` files; ``--no-pycache`` keeps the
environment as it is.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, run_line, write_section  # noqa: E402

SECTION = "Start-up"
#: Upper bound of issue 13 on ``dnnergy estimate lenet5 --json``, as a multiple of the bare torch import.
TARGET = 1.5
#: Run in a subprocess: the command line's ``--help``, then the heavy modules it left in ``sys.modules``.
HELP_PROBE = """\
import sys
from dnnergy.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
heavy = [m for m in ("torch", "scipy", "pandas", "matplotlib", "onnx") if m in sys.modules]
print("imported:", ",".join(heavy) or "none", file=sys.stderr)
"""


def dnnergy_command() -> list[str]:
    """The installed ``dnnergy`` script beside this interpreter, else ``python -m dnnergy``."""
    script = Path(sys.executable).with_name("dnnergy")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dnnergy"]


def commands(quick: bool) -> dict[str, list[str]]:
    """Label -> argv of every timed command; the first is the baseline."""
    cli = dnnergy_command()
    out = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "dnnergy --help": [*cli, "--help"],
        "dnnergy zoo": [*cli, "zoo"],
        "dnnergy methods": [*cli, "methods"],
        "dnnergy estimate lenet5 --json": [*cli, "estimate", "lenet5", "--json"],
    }
    if not quick:
        out["dnnergy estimate resnet50 --json"] = [*cli, "estimate", "resnet50", "--json"]
    return out


def subprocess_env(pycache: Path | None) -> dict[str, str]:
    """This process's environment; with ``pycache``, bytecode is written to and read from there."""
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` until it exits (output discarded); a failure raises."""
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds


def best_times(argvs: dict[str, list[str]], repeat: int, env: dict[str, str]) -> dict[str, float]:
    """The smallest of ``repeat`` wall times of each command, the commands taking turns after one untimed round."""
    for argv in argvs.values():
        wall_time(argv, env)
    times: dict[str, list[float]] = {label: [] for label in argvs}
    for _ in range(repeat):
        for label, argv in argvs.items():
            times[label].append(wall_time(argv, env))
    return {label: min(values) for label, values in times.items()}


def help_imports(env: dict[str, str]) -> str:
    """Comma-separated heavy modules (torch, scipy, pandas, matplotlib, onnx) that ``dnnergy --help`` imported, or 'none'."""
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the --help probe failed: {proc.stderr[-2000:]}")
    return proc.stderr.strip().rsplit("imported:", 1)[-1].strip()


def table(best: dict[str, float]) -> str:
    """Markdown rows: command, best seconds, ratio to the first command (the torch import)."""
    base = next(iter(best.values()))
    lines = ["| command | best wall time (s) | / import torch |", "|---|---:|---:|"]
    lines += [f"| `{label}` | {seconds:.2f} | {seconds / base:.2f}x |" for label, seconds in best.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command; the best counts (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file whose section is replaced")
    parser.add_argument("--quick", action="store_true", help="one run each, no resnet50 (test suite)")
    parser.add_argument("--pycache", type=Path, default=Path(tempfile.gettempdir()) / "dnnergy-startup-pycache",
                        help="bytecode cache of the subprocesses (PYTHONPYCACHEPREFIX)")
    parser.add_argument("--no-pycache", action="store_true", help="keep the environment's bytecode settings")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1 (got {args.repeat})")
    repeat = 1 if args.quick else args.repeat
    start = time.perf_counter()
    pycache = None if args.no_pycache else args.pycache
    env = subprocess_env(pycache)
    best = best_times(commands(args.quick), repeat, env)
    imported = help_imports(env)
    ratio = best["dnnergy estimate lenet5 --json"] / best['python -c "import torch"']
    verdict = "within" if ratio <= TARGET else "over"
    body = "\n\n".join([
        run_line("startup.py", argv if argv is not None else sys.argv[1:], time.perf_counter() - start),
        (f"Best of {repeat} run(s) of each command in a fresh subprocess ({os.cpu_count()} CPU(s)), the commands "
         "taking turns after one untimed round; ratios are to the bare torch import timed in the same run. "
         f"`dnnergy` is `{' '.join(Path(a).name for a in dnnergy_command())}`. "
         + ("Bytecode cached (PYTHONPYCACHEPREFIX), as in an installed package." if pycache is not None else
            f"Environment as is (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')}).")),
        table(best),
        (f"`dnnergy estimate lenet5 --json` takes {ratio:.2f}x the torch import, {verdict} the {TARGET}x target of "
         f"issue 13. Heavy modules imported by `dnnergy --help` (torch, scipy, pandas, matplotlib, onnx): {imported}."),
    ])
    print(f"## {SECTION}\n\n{body}\n")
    write_section(SECTION, body, args.out)
    print(f"wrote the '{SECTION}' section of {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
