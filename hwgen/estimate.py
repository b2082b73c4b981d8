"""``hwgen estimate``: the build's folding and figures without emitting Verilog.

For design-space sweeps (boards, frame rates, bit widths, resolutions): the same
:func:`hwgen.build.compile_design` as ``hwgen build``, so the report's figures are the ones a
build of the same options writes, in seconds instead of minutes. The report goes to
``build/<model>-<board>-estimate/`` (beside a build's folder, never over it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .build import BUILD_MARKER, BuildOptions, compile_design, options_record
from .outputs import OutputError, check_output_dir, replacing_dir
from .report import write_report

__all__ = ["ESTIMATE_MARKER", "EstimateResult", "estimate"]

#: The file that marks a folder as an estimate's (a later estimate may replace it whole).
ESTIMATE_MARKER = "estimate.json"

#: The default folder is the build's with this after it.
ESTIMATE_SUFFIX = "-estimate"


@dataclass
class EstimateResult:
    out_dir: Path
    report: dict
    seconds: float


def estimate(opts: BuildOptions, progress=None) -> EstimateResult:
    """Fold ``opts.model`` for ``opts.board`` and write ``report.json``/``report.md`` (and the
    plots) to the output folder; no Verilog, no weights.

    The folder is checked before any work and replaced whole at the end, as a build's.

    Raises
    ------
    hwgen.outputs.OutputError
        If the output folder is a file, holds a build or files no estimate wrote, or cannot
        be written.
    FitError, NotOnChipError
        As :func:`hwgen.build.compile_design`.
    """
    from boards import get_board

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    board = get_board(opts.board)
    out_dir = opts.output_dir(board.name, ESTIMATE_SUFFIX)
    if (out_dir / BUILD_MARKER).is_file():
        raise OutputError(f"output folder {str(out_dir)!r} holds a build ({BUILD_MARKER}); an "
                          "estimate does not replace a build: give another --out")
    check_output_dir(out_dir, "output folder", owned_by=ESTIMATE_MARKER)
    design = compile_design(opts, board, say)
    report = dict(design.report, estimate_only=True)
    with replacing_dir(out_dir) as work:
        write_report(report, work)
        (work / ESTIMATE_MARKER).write_text(options_record(opts, board.name))
    seconds = time.perf_counter() - start
    say(f"wrote {out_dir}/ (report.md, report.json) in {seconds:.1f} s")
    return EstimateResult(out_dir, report, seconds)
