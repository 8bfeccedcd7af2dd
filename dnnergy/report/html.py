"""One self-contained HTML page of an energy estimate: tables, inline SVG charts, inline CSS, nothing to fetch.

:func:`html_table` renders a :class:`~dnnergy.report.tables.Table` (numbers formatted as
the CLI formats them, every string escaped); :func:`report_html` assembles the page:
the per-layer breakdown by data type and by level, each layer's share of energy beside
its share of MACs and weights, bitwidth and sparsity per layer, optionally models side
by side (seed 004's lightweight models) and the accuracy-energy trade-offs of compression
results with their Pareto fronts. Charts are matplotlib SVG with text drawn as paths, so
the file opens offline; it holds no script. :func:`write_report` writes it atomically.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Sequence

from ..energy import EnergyReport
from ..io import atomic_write
from ..workload import Workload
from .compare import ModelCost, comparison_table
from .records import Results, model_lines, plotted
from .shares import MIN_SHARE, precision_table, share_bars, share_table
from .tables import Table, energy_table, points_table, record_table, share_lines, unsupported_lines
from .text import energy as energy_text
from .text import format_table, si

__all__ = ["html_table", "report_html", "write_report"]

#: Layers drawn in the per-layer charts (the most energy-hungry, in execution order); tables list all.
TOP_LAYERS = 40

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
nav a{margin-right:1em}.meta{color:#555}.note{color:#555;font-size:.9em}.warning{color:#a40000;font-weight:600}
figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
.scroll{overflow-x:auto;max-height:36em;overflow-y:auto;border:1px solid #eee}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{padding:.2em .6em;border-bottom:1px solid #eee;white-space:nowrap}th{background:#f6f6f6;position:sticky;top:0;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}tfoot td{font-weight:600;border-top:2px solid #ccc}
"""


def html_table(table: Table) -> str:
    """``table`` as an HTML ``<table>``: its title as caption, numbers formatted (:func:`~dnnergy.report.text.format_table`)
    and right-aligned, the footer in ``<tfoot>``; every string is escaped (a layer named ``<b>`` shows as ``&lt;b&gt;``)."""
    formatted = format_table(table)

    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(f'<{tag}{" class=num" if i >= 2 else ""}>{escape(v)}</{tag}>' for i, v in enumerate(values))

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in formatted.rows)
    foot = f"<tfoot><tr>{cells(formatted.footer, 'td')}</tr></tfoot>" if formatted.footer else ""
    return (f"<table><caption>{escape(formatted.title)}</caption><thead><tr>{cells(formatted.headers, 'th')}</tr></thead>"
            f"<tbody>{body}</tbody>{foot}</table>")


def _svg(fig) -> str:
    from .plots import _pyplot, svg_text

    try:
        return svg_text(fig)
    finally:
        _pyplot().close(fig)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _scroll(table: Table) -> str:
    return f'<div class="scroll">{html_table(table)}</div>'


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def _breakdown(report: EnergyReport, batch: int) -> str:
    from .plots import breakdown_figure, levels_figure

    shown = f"the {TOP_LAYERS} layers with the most energy, in execution order" if len(report.by_layer()) > TOP_LAYERS else "every layer"
    return _section(
        "breakdown", "Energy per layer",
        "".join(f'<p class="meta">{escape(line)}</p>' for line in share_lines(report)),
        _figure(_svg(breakdown_figure(report, TOP_LAYERS)), f"Energy per layer by data type ({shown}), and the whole "
                                                             f"network's split by level, per image, in {report.unit}."),
        _figure(_svg(levels_figure(report, TOP_LAYERS)), f"Energy per layer by memory level ({shown}), per image."),
        _scroll(energy_table(report, per=batch)))


def _shares(workload: Workload, report: EnergyReport) -> str:
    from .plots import bars_figure

    table = share_table(workload, report)
    bars = share_bars(table, MIN_SHARE, TOP_LAYERS)
    fig = bars_figure(bars.labels, bars.series, "share of the network (%)",
                      f"{workload.name}: each layer's share of energy, MACs and weights")
    caption = "Share of energy, of MACs and of weights per layer"
    if bars.other:
        shown = len(bars.labels) - 1
        caption += (f": the {shown} layer{'s' * (shown != 1)} with the largest shares (each at least {MIN_SHARE:g}% of "
                    f"energy, MACs or weights; at most {TOP_LAYERS}); the last bar sums the other "
                    f"{bars.other} layer{'s' * (bars.other != 1)} ({bars.other_shares['energy']:.1f}% of energy, "
                    f"{bars.other_shares['MAC']:.1f}% of MACs, {bars.other_shares['weight']:.1f}% of weights). "
                    "The table lists every layer.")
    return _section(
        "shares", "Energy vs MACs and weights",
        '<p>MACs and weights are poor proxies for energy (seed 004): data movement dominates, and it follows how often '
        'data is reused, not how many operations or parameters a layer has. Compare the three shares per layer.</p>',
        _figure(_svg(fig), caption + ("" if bars.other else ".")),
        _scroll(table))


def _precision(workload: Workload, word_bits: int) -> str:
    from .plots import bars_figure

    table = precision_table(workload, word_bits)
    parts = []
    sparsity = {name: table.column(f"{name} sparsity (%)") for name in ("weight", "input", "output")}
    if any(v for values in sparsity.values() for v in values):
        keep = [i for i in range(len(table.rows)) if workload.layers[i].is_mac][:2 * TOP_LAYERS]
        fig = bars_figure([table.rows[i][0] for i in keep], {k: [v[i] for i in keep] for k, v in sparsity.items()},
                          "zeros (%)", f"{workload.name}: sparsity of the MAC layers")
        parts.append(_figure(_svg(fig), "Fraction of zeros in each MAC layer's weights, inputs and outputs."))
    else:
        parts.append('<p class="note">Every tensor is taken as dense (no measured densities: run with --profile DATA '
                     'to measure zeros on real inputs, or compress the model).</p>')
    return _section("precision", "Bitwidth and sparsity per layer", *parts, _scroll(table))


def _comparison(costs: Sequence[ModelCost], subject: str) -> str:
    from .plots import bars_figure

    table = comparison_table(costs, "Models side by side, per image")
    first = costs[0].name
    series = {name: table.column(f"{name} ratio") for name in ("energy", "MAC", "weight")}
    fig = bars_figure([c.name for c in costs], {k: [v or 0.0 for v in values] for k, values in series.items()},
                      f"relative to {first} (log scale)", "Energy, MACs and weights per image", log=True)
    return _section(
        "compare", "Lightweight models",
        f"<p>Seed 004's lightweight designs (grouped, depthwise and pointwise convolutions) cut MACs and weights; "
        f"their energy on this hardware falls by different factors. Ratios are to {escape(first)}; "
        f"{escape(subject)} is the model of this report. Densities: dense models are priced at the hardware's word "
        f"with no zeros, measured ones with the zeros profiled.</p>",
        _figure(_svg(fig), "Energy, MACs and weights per image of each model, relative to the first (logarithmic axis)."),
        html_table(table))


def _tradeoffs(results: Results, names: Sequence[str]) -> str:
    from .plots import tradeoff_figure

    unit = results.unit or "none"
    warnings, notes = model_lines(results, names)
    label = {m: f"{m} [other model]" if m in warnings else m for m in results.series}  # the legend marks such a curve
    fronts = results.fronts()
    front = results.front()
    series = {label[m]: [(p.energy, 100 * p.accuracy) for p in plotted(points)] for m, points in results.series.items()}
    fig = tradeoff_figure({m: s for m, s in series.items() if s}, f"energy per image ({unit})", "validation accuracy (%)",
                          front=[(p.energy, 100 * p.accuracy) for p in front],
                          fronts={label[m]: [(p.energy, 100 * p.accuracy) for p in f] for m, f in fronts.items()})
    parts = [f'<p class="meta">Read from {escape(", ".join(source.path for source in results.sources))}.</p>',
             *(f'<p class="warning">warning: the curve {escape(label[m])}: {escape(line)}</p>'
               for m, lines in warnings.items() for line in lines),
             *(f'<p class="note">{escape(line)}</p>' for line in notes),
             _figure(_svg(fig), "Validation accuracy against energy per image, one curve per method; the pale band under "
                                "a curve is the method's Pareto front, the dashed line the front of all methods.")]
    missing = len(results.points) - len(plotted(results.points))
    if missing:
        parts.append(f'<p class="note">{missing} point(s) without an energy or a validation accuracy are listed but not plotted.</p>')
    parts.append(_scroll(points_table(results.points, "Every point (* = on the Pareto front of all methods)", front)))
    for path, record in results.records:
        model = f"a run of {record.model}" if record.model else "model not recorded"
        parts.append(f'<p class="meta">{escape(path)} ({escape(model)})</p>' + html_table(record_table(record)))
    return _section("tradeoffs", "Compression: accuracy against energy", *parts)


def report_html(workload: Workload, report: EnergyReport, *, word_bits: int, comparison: Sequence[ModelCost] = (),
                results: Results | None = None, aliases: Sequence[str] = ()) -> str:
    """The whole report page as HTML text.

    ``workload`` and ``report`` are the model and its estimate; ``word_bits`` the
    hardware's word (the bitwidth of layers that declare none); ``comparison`` models to
    set side by side (ratios to the first; empty: no such section); ``results`` compression
    records and sweeps (:func:`~dnnergy.report.records.load_results`; None: no such
    section; a file naming a model other than ``workload.name`` or one of ``aliases``, the other names the model
    goes by, such as a saved model's architecture, gets a warning next to its curve). Energies in the tables are
    per image.
    """
    batch = workload.batch
    shapes = ", ".join("x".join(map(str, s)) for s in workload.input_shapes)
    meta = (f"{report.hardware}, {report.dataflow}; input {shapes}; energy per image "
            f"{energy_text(report.total / batch, report.unit)}{'' if report.unit == 'pJ' else ' ' + report.unit}; "
            f"{si(workload.macs // batch)} MACs per image; {si(workload.weights)} weights; {len(workload)} layers")
    notes = unsupported_lines(workload) + [f"not priced (non-MAC layers excluded): {', '.join(report.excluded)}"] * bool(report.excluded)
    sections = [_breakdown(report, batch), _shares(workload, report), _precision(workload, word_bits)]
    links = [("breakdown", "Energy per layer"), ("shares", "Energy vs MACs and weights"), ("precision", "Bitwidth and sparsity")]
    if comparison:
        sections.append(_comparison(comparison, workload.name))
        links.append(("compare", "Lightweight models"))
    if results is not None:
        sections.append(_tradeoffs(results, [workload.name, *aliases]))
        links.append(("tradeoffs", "Compression trade-offs"))
    from .. import __version__

    title = f"dnnergy report: {workload.name}"
    nav = "".join(f'<a href="#{anchor}">{escape(text)}</a>' for anchor, text in links)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"dnnergy {escape(__version__)}\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>{escape(title)}</h1><p class=\"meta\">{escape(meta)}</p>"
            + "".join(f'<p class="note">{escape(line)}</p>' for line in notes)
            + f"<nav>{nav}</nav></header>{''.join(sections)}"
            f"<footer><p class=\"note\">Written by dnnergy {escape(__version__)}.</p></footer></body></html>\n")


def write_report(path: str | os.PathLike, workload: Workload, report: EnergyReport, **options) -> Path:
    """:func:`report_html` written atomically to ``path`` (UTF-8); returns the path."""
    return atomic_write(path, report_html(workload, report, **options))
