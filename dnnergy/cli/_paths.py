"""Output paths of the CLI (``--out``, ``--plot``), checked before any work so a long run never fails at its end."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserInputError

__all__ = ["check_output", "check_plot"]


def check_output(path: str, option: str) -> Path:
    """``path`` as a writable file target, or :class:`UserInputError` naming ``option``.

    Refuses an existing directory and a path whose folder does not exist.
    """
    target = Path(path)
    if target.is_dir():
        raise UserInputError(f"{option} {path}: is a directory; give a file name inside it")
    folder = target.resolve().parent
    if not folder.is_dir():
        raise UserInputError(f"{option} {path}: folder {folder} does not exist")
    return target


def check_plot(path: str, option: str = "--plot") -> Path:
    """:func:`check_output` plus a format matplotlib writes (the suffix; none means PNG)."""
    target = check_output(path, option)
    fmt = target.suffix[1:].lower() or "png"
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UserInputError("plots need matplotlib: pip install 'dnnergy[plot]'") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise UserInputError(f"{option} {path}: cannot write .{fmt} plots; use one of {', '.join('.' + f for f in sorted(formats))}")
    return target
