"""The HTML report opened in a real headless browser (Debian's chromium through playwright), offline, and the CLI.

The browser test skips when chromium or playwright is missing, unless ``DNNERGY_REQUIRE_BROWSER=1``
(CI sets it, so there it fails instead of skipping).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from dnnergy.report.compare import compare_models
from dnnergy.report.html import write_report
from dnnergy.report.records import load_results

SCRIPT = "<script>alert(1)</script>"  # conftest's tiny model names its first layer so
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium():
    """(sync_playwright, chromium path), or skip (fail under DNNERGY_REQUIRE_BROWSER=1) when either is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path is None or sync_playwright is None:
        missing = "chromium" if path is None else "playwright"
        if os.environ.get("DNNERGY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DNNERGY_REQUIRE_BROWSER=1 but {missing} is not installed")
        pytest.skip(f"{missing} is not installed")
    return sync_playwright, path


def test_report_renders_offline_in_chromium(tmp_path, tiny_workload_report, records_files):
    sync_playwright, path = chromium()
    from dnnergy import trace, zoo

    workload, report = tiny_workload_report
    lenet = trace(zoo.create_model("lenet300"), zoo.model_info("lenet300").input_shape, name="lenet300", compute=False)
    page_file = write_report(tmp_path / "report.html", workload, report, word_bits=16,
                             comparison=compare_models([lenet, workload], "eyeriss", "row_stationary"),
                             results=load_results(records_files))
    attempted, failed, errors = [], [], []

    def route(handled):
        if handled.request.url.startswith("file://"):
            handled.continue_()
        else:
            attempted.append(handled.request.url)
            handled.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", route)
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(page_file.resolve().as_uri())
            page.wait_for_load_state("load")
            text = page.inner_text("body")
            sections = [page.locator(f"section#{anchor}").count() for anchor in ("breakdown", "shares", "precision", "compare", "tradeoffs")]
            charts = page.locator("svg").count()
            scripts = page.locator("script").count()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert attempted == [] and failed == [] and errors == []
    assert sections == [1, 1, 1, 1, 1]
    assert charts >= 5  # breakdown, levels, shares, comparison, trade-off (no sparsity chart: all dense)
    assert scripts == 0 and SCRIPT in text  # the layer named <script> shows as text, runs as nothing
    for words in ("Energy per layer", "Energy vs MACs and weights", "Bitwidth and sparsity per layer", "Lightweight models",
                  "Pareto front", "structured", "magnitude", "lenet300", "tiny <b>net</b>"):
        assert words in text
    data = shot.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dnnergy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_report_writes_one_self_contained_page(tmp_path):
    result = run_cli("report", "lenet5", "-o", "x.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "x.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "<link" not in page and "src=" not in page
    for words in ("Energy per layer", "Lightweight models", "squeezenet1_0", "mobilenet_v1", "shufflenet", "googlenet"):
        assert words in page
    assert 'id="tradeoffs"' not in page  # no --records, no trade-off section
    assert result.stderr.strip() == "wrote x.html"


def test_cli_report_refuses_a_bad_records_file_before_any_work(tmp_path):
    (tmp_path / "bad.json").write_text('{"format": "something/1"}')
    result = run_cli("report", "lenet5", "-o", "x.html", "--records", "bad.json", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: records file bad.json: not a compression record or sweep")
    assert not (tmp_path / "x.html").exists()


def test_cli_report_refuses_a_missing_folder(tmp_path, capsys):
    from dnnergy.cli import main

    with pytest.raises(SystemExit) as info:
        main(["report", "lenet5", "-o", str(tmp_path / "no" / "x.html")])
    assert info.value.code == 2 and capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'no' / 'x.html'}: folder")
