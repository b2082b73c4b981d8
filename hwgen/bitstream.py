"""``hwgen bitstream``: a build, then its board project in ``build/<model>-<board>/board/``.

The board's flow (:data:`FLOWS`) writes everything a person needs to produce and use the
bitstream: the vendor or open-tool project, the shell around ``hwgen_top``, the host program,
``design.json`` (stream shapes), ``golden/`` (seeded images and the golden model's outputs, for
the host program's ``--check``) and a ``README.md``. When the board's tools are present the
flow runs, and ``report.json`` gains the tools' own figures under ``"implementation"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from boards.design import BoardDesign, BoardProject, Implementation, ToolMissingError
from boards.lattice import Ecp5Flow
from boards.xilinx import WRITERS as XILINX_BOARDS
from boards.xilinx import XilinxFlow

from sim.logic_depth import max_logic_levels, stage_depths

from .build import BuildOptions, BuildResult, build, frame_rate
from .outputs import replacing_dir
from .report import write_report

__all__ = ["BoardFlow", "FLOWS", "NoShellError", "BitstreamResult", "bitstream", "flow_for",
           "design_from_build", "GOLDEN_FRAMES", "add_implementation", "add_logic_depths"]

#: Seeded images (and their golden outputs) shipped in ``board/golden/``.
GOLDEN_FRAMES = 3


class BoardFlow(Protocol):
    """What a board's flow offers :func:`bitstream`."""

    tool: str

    def tools_present(self) -> bool: ...

    def write(self, design: BoardDesign) -> BoardProject: ...

    def run(self, project: BoardProject, design: BoardDesign,
            progress: Callable[[str], None] | None = None) -> Implementation: ...


#: Board name to the flow that puts a design on it.
FLOWS: dict[str, Callable[[], BoardFlow]] = {
    "ecp5-85f": Ecp5Flow,
    **{name: (lambda name=name: XilinxFlow(name)) for name in XILINX_BOARDS},
}


class NoShellError(LookupError):
    """The board has no shell and project writer yet; the message names the boards that do."""


def flow_for(board_name: str) -> BoardFlow:
    """The flow for a catalog board name.

    Raises
    ------
    NoShellError
        If no flow is registered for it.
    """
    try:
        return FLOWS[board_name]()
    except KeyError:
        raise NoShellError(f"board {board_name!r} has no board flow yet; boards with one: "
                           f"{', '.join(sorted(FLOWS))}") from None


def design_from_build(result: BuildResult, output_shape: tuple[int, ...]) -> BoardDesign:
    """The board flow's view of a one-partition build."""
    e = result.emitted[0]
    return BoardDesign(
        name=result.report["model"], board=result.board, build_dir=result.out_dir,
        verilog=e.verilog, weight_files=tuple(e.weight_files), in_lanes=e.in_lanes,
        in_bits=e.in_bits, in_beats_per_frame=e.in_beats_per_frame, out_lanes=e.out_lanes,
        out_bits=e.out_bits, out_beats_per_frame=e.out_beats_per_frame,
        input_shape=tuple(result.qmodel.model.input_shape), output_shape=tuple(output_shape),
        clock_mhz=float(result.board.clock_mhz))


def _golden(result: BuildResult, frames: int, seed: int = 0):
    """Seeded quantized images and the golden model's outputs for them."""
    from dataflows.golden import run_quantized
    q = result.qmodel
    rng = np.random.default_rng(seed)
    images = [q.quantize_input(x) for x in rng.standard_normal((frames, *q.model.input_shape))]
    return images, [np.asarray(run_quantized(q, img)) for img in images]


def _depths(hw, board, say) -> dict[str, int]:
    """Every stage's logic depth, one progress line per stage as it is known (a cold cache
    synthesizes each: seconds for a small stage, minutes for a wide one; one yosys per CPU)."""
    stages = list(hw.stages())
    jobs = max(1, os.cpu_count() or 1)
    say(f"measuring the logic depth of {len(stages)} stages with yosys (cached by content, "
        f"{jobs} at a time): the timing evidence for {board.clock_mhz:g} MHz")
    count = iter(range(1, len(stages) + 1))
    return stage_depths(hw, board.family, jobs=jobs,
                        progress=lambda name, levels: say(f"  [{next(count)}/{len(stages)}] "
                                                          f"{name}: {levels} levels"))


def add_logic_depths(report: dict, depths: dict[str, int], limit: int) -> list[str]:
    """Put each stage's logic depth and the clock's limit into ``report`` (in place); return
    the warnings to print (stages deeper than the limit)."""
    for row in report["stages"]:
        row["logic_depth"] = depths[row["name"]]
    deeper = [name for name, depth in depths.items() if depth > limit]
    report["timing"] = {"max_logic_levels": limit, "clock_mhz": report["clock_mhz"],
                        "deeper_stages": deeper, "rule": "docs/timing.md"}
    if not deeper:
        return []
    worst = max(deeper, key=depths.get)
    return [f"{len(deeper)} of {len(depths)} stages are deeper than the {limit} logic levels "
            f"{report['clock_mhz']:g} MHz allows on {report['board']} (deepest: {worst}, "
            f"{depths[worst]}; rule in docs/timing.md)"]


def add_implementation(report: dict, impl: Implementation) -> list[str]:
    """Put ``impl`` into ``report`` (in place); return the warnings to print.

    A missed clock is recorded, not hidden: ``fps`` becomes the rate at the achieved Fmax and
    ``planned_fps`` keeps the rate at the clock the design was folded for.
    """
    report["implementation"] = impl.as_dict()
    if impl.timing_met:
        return []
    planned = report["fps"]
    report["planned_fps"] = planned
    reconfiguration = report.get("reconfiguration") or {}
    report["fps"] = round(frame_rate(impl.fmax_mhz, report["cycles_per_frame"],
                                     report["partitions"],
                                     reconfiguration.get("seconds_per_partition"),
                                     reconfiguration.get("batch", 1)), 3)
    return [f"TIMING NOT MET: {impl.tool} reached {impl.fmax_mhz:g} MHz against the "
            f"{impl.clock_mhz:g} MHz constraint; the design runs at {report['fps']:,.1f} fps "
            f"at {impl.fmax_mhz:g} MHz, not {planned:,.1f}"]


@dataclass
class BitstreamResult:
    build: BuildResult
    design: BoardDesign
    project: BoardProject
    implementation: Implementation | None
    warnings: list[str]


def bitstream(opts: BuildOptions, *, run: bool | None = None,
              progress: Callable[[str], None] | None = None) -> BitstreamResult:
    """Build, write the board project, and (``run`` True, or None with the tools present)
    run the board's tools.

    Raises
    ------
    NoShellError
        Before any work, if the board has no flow.
    ToolMissingError
        Before any work, if ``run`` is True and the tools are missing.
    boards.design.FlowError
        If a tool fails; the build and an earlier ``board/`` are left as they were.
    """
    from boards import get_board
    say = progress or (lambda msg: None)
    board = get_board(opts.board)
    flow = flow_for(board.name)
    present = flow.tools_present()
    if run and not present:
        raise ToolMissingError(f"{flow.tool} is not installed; without --run the project is "
                               "written for a machine that has it")
    run = present if run is None else run
    opts = replace(opts, on_chip_only=True)          # partitions have no board flow yet
    result = build(opts, progress=say)
    warnings = add_logic_depths(result.report, _depths(result.parts[0].hw, board, say),
                                max_logic_levels(board.family, board.clock_mhz))
    images, outputs = _golden(result, GOLDEN_FRAMES)
    design = design_from_build(result, outputs[0].shape)
    impl = None
    with replacing_dir(design.board_dir) as work:
        say(f"writing the {board.name} project to {design.board_dir}/")
        private = replace(design, board_dir_name=work.name)
        project = flow.write(private)
        golden = work / "golden"
        golden.mkdir()
        for k, (x, y) in enumerate(zip(images, outputs)):
            np.save(golden / f"input_{k}.npy", x)
            np.save(golden / f"output_{k}.npy", y)
        if run:
            impl = flow.run(project, private, progress=say)
    project = replace(project, board_dir=design.board_dir)
    if impl is not None:
        impl = replace(impl, bitstream=str(Path(design.board_dir_name) / project.bitstream))
        warnings += add_implementation(result.report, impl)
    write_report(result.report, result.out_dir)
    return BitstreamResult(result, design, project, impl, warnings)

