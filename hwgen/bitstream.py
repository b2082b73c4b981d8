"""``hwgen bitstream``: a build, then its board project in ``build/<model>-<board>/board/``.

The board's flow (:data:`FLOWS`) writes everything a person needs to produce and use the
bitstream: the vendor or open-tool project, the shell around ``hwgen_top``, the host program,
``design.json`` (stream shapes), ``golden/`` (seeded images and the golden model's outputs, for
the host program's ``--check``) and a ``README.md``. When the board's tools are present the
flow runs, and ``report.json`` gains the tools' own figures under ``"implementation"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from boards.design import BoardDesign, BoardProject, Implementation, ToolMissingError
from boards.lattice import Ecp5Flow
from boards.xilinx import WRITERS as XILINX_BOARDS
from boards.xilinx import XilinxFlow

from sim.logic_depth import max_logic_levels, stage_depths

from .build import BuildOptions, BuildResult, NotOnChipError, build, frame_rate
from .compile import DdrWeights, output_partitions, partition_sources
from .outputs import replacing_dir
from .report import write_report

__all__ = ["BoardFlow", "FLOWS", "NoShellError", "BitstreamResult", "bitstream", "flow_for",
           "design_from_build", "GOLDEN_FRAMES", "add_implementation", "add_logic_depths"]

#: Seeded images (and their golden outputs) shipped in ``board/golden/``.
GOLDEN_FRAMES = 3
#: A partitioned design's project folders in ``board/``.
PARTITION_DIR = "partition{k}"


class BoardFlow(Protocol):
    """What a board's flow offers :func:`bitstream`; ``partitioned`` says whether it takes a
    design in several partitions (one project per partition, loaded in turn by the host)."""

    tool: str
    partitioned: bool

    def tools_present(self) -> bool: ...

    def write(self, design: BoardDesign) -> BoardProject: ...

    def run(self, project: BoardProject, design: BoardDesign,
            progress: Callable[[str], None] | None = None) -> Implementation: ...

    def write_partitioned(self, board_dir: Path, plan: dict,
                          projects: list[BoardProject]) -> BoardProject:
        """Beside the partitions' projects in ``board_dir``: what builds them all and the
        host program that runs them in turn (only where ``partitioned``)."""


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
    return _board_design(result, 0, result.report["model"],
                         tuple(result.qmodel.model.input_shape), tuple(output_shape))


def _board_design(result: BuildResult, k: int, name: str, input_shape: tuple[int, ...],
                  output_shape: tuple[int, ...], board_dir_name: str = "board") -> BoardDesign:
    e = result.emitted[k]
    return BoardDesign(
        name=name, board=result.board, build_dir=result.out_dir,
        verilog=e.verilog, weight_files=tuple(e.weight_files), in_lanes=e.in_lanes,
        in_bits=e.in_bits, in_beats_per_frame=e.in_beats_per_frame, out_lanes=e.out_lanes,
        out_bits=e.out_bits, out_beats_per_frame=e.out_beats_per_frame,
        input_shape=input_shape, output_shape=output_shape,
        clock_mhz=float(result.board.clock_mhz), board_dir_name=board_dir_name,
        weight_load=e.weight_load, load_beats=e.load_beats)


def partition_designs(result: BuildResult, board_dir_name: str = "board") -> list[BoardDesign]:
    """The board flow's view of each partition of a partitioned build, its project in
    ``<board_dir_name>/partition<k>/``. Shapes are the tensors at the partition's cut, (H, W,
    C) with a split layer's part holding only its channels."""
    designs = []
    for k, part in enumerate(result.parts):
        hw = part.hw
        out = hw.stage(hw.output[0]).out_shape
        inp = hw.input_shape
        designs.append(_board_design(
            result, k, f"{result.report['model']}-partition{k}", (inp.h, inp.w, inp.c),
            (out.h, out.w, out.c), f"{board_dir_name}/{PARTITION_DIR.format(k=k)}"))
    return designs


def partition_plan(result: BuildResult, output_shape: tuple[int, ...]) -> dict:
    """``partitions.json``: the order the host runs the partitions in and how their streams
    chain (each partition's input is its sources' outputs concatenated along channels, the
    network's input when it has none; the network's output is the outputs of ``output``
    concatenated, reshaped to ``output_shape``)."""
    graphs = [p.hw for p in result.parts]
    reconfiguration = result.report.get("reconfiguration", {})
    return {
        "model": result.report["model"], "board": result.board.name,
        "input_shape": list(result.qmodel.model.input_shape),
        "output_shape": list(output_shape),
        "partitions": [{"folder": PARTITION_DIR.format(k=k), "sources": sources}
                       for k, sources in enumerate(partition_sources(graphs))],
        "output": output_partitions(graphs),
        "reconfiguration_seconds_model": reconfiguration.get("seconds_per_partition"),
    }


def _golden(result: BuildResult, frames: int, seed: int = 0):
    """Seeded quantized images and the golden model's outputs for them."""
    from dataflows.golden import run_quantized
    q = result.qmodel
    rng = np.random.default_rng(seed)
    images = [q.quantize_input(x) for x in rng.standard_normal((frames, *q.model.input_shape))]
    return images, [np.asarray(run_quantized(q, img)) for img in images]


def _depths(graphs, board, say) -> list[int]:
    """Every stage's logic depth, partition after partition in the report's stage order, one
    progress line per stage as it is known (a cold cache synthesizes each: seconds for a small
    stage, minutes for a wide one; one yosys per CPU)."""
    total = sum(len(list(hw.stages())) for hw in graphs)
    jobs = max(1, os.cpu_count() or 1)
    say(f"measuring the logic depth of {total} stages with yosys (cached by content, "
        f"{jobs} at a time): the timing evidence for {board.clock_mhz:g} MHz")
    count = iter(range(1, total + 1))
    depths = []
    for hw in graphs:
        found = stage_depths(hw, board.family, jobs=jobs,
                             progress=lambda name, levels: say(f"  [{next(count)}/{total}] "
                                                               f"{name}: {levels} levels"))
        depths += [found[st.name] for st in hw.stages()]
    return depths


def add_logic_depths(report: dict, depths: list[int], limit: int) -> list[str]:
    """Put each stage's logic depth (``depths``, in the order of ``report["stages"]``) and the
    clock's limit into ``report`` (in place); return the warnings to print (stages deeper than
    the limit)."""
    rows = report["stages"]
    if len(depths) != len(rows):
        raise ValueError(f"{len(depths)} depths for {len(rows)} stages")
    for row, depth in zip(rows, depths):
        row["logic_depth"] = depth
    deeper = [row["name"] for row in rows if row["logic_depth"] > limit]
    report["timing"] = {"max_logic_levels": limit, "clock_mhz": report["clock_mhz"],
                        "deeper_stages": deeper, "rule": "docs/timing.md"}
    if not deeper:
        return []
    worst = max((row for row in rows if row["logic_depth"] > limit),
                key=lambda row: row["logic_depth"])
    return [f"{len(deeper)} of {len(rows)} stages are deeper than the {limit} logic levels "
            f"{report['clock_mhz']:g} MHz allows on {report['board']} (deepest: "
            f"{worst['name']}, {worst['logic_depth']}; rule in docs/timing.md)"]


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
    """What :func:`bitstream` did. ``project`` is the board folder's (for a partitioned
    design: the folder holding one project per partition, ``partition_projects``)."""

    build: BuildResult
    design: BoardDesign
    project: BoardProject
    implementation: Implementation | None
    warnings: list[str]
    partition_projects: list[BoardProject] = field(default_factory=list)


def partitioned_boards() -> list[str]:
    """The boards whose flow takes a partitioned design."""
    return sorted(name for name, make in FLOWS.items() if make().partitioned)


def _golden_files(folder: Path, images, outputs) -> None:
    folder.mkdir()
    for k, (x, y) in enumerate(zip(images, outputs)):
        np.save(folder / f"input_{k}.npy", x)
        np.save(folder / f"output_{k}.npy", y)


def bitstream(opts: BuildOptions, *, run: bool | None = None,
              progress: Callable[[str], None] | None = None) -> BitstreamResult:
    """Build, write the board project (one per partition where the board's flow takes
    partitioned designs), and (``run`` True, or None with the tools present) run the board's
    tools.

    Raises
    ------
    NoShellError
        Before any work, if the board has no flow.
    ToolMissingError
        Before any work, if ``run`` is True and the tools are missing.
    ValueError
        Before any work, for ``--ddr-weights fc`` (no shell connects DDR-streamed weights yet;
        the default streams none here).
    NotOnChipError
        Before anything is written, if the design needs partitions and the board's flow
        takes only designs that fit on chip.
    boards.design.FlowError
        If a tool fails; the build and an earlier ``board/`` are left as they were.
    """
    from boards import get_board
    say = progress or (lambda msg: None)
    board = get_board(opts.board)
    flow = flow_for(board.name)
    # The board shells do not connect the DDR read ports yet: a design too large for one
    # bitstream is partitioned instead of streaming weights.
    if opts.ddr_weights is DdrWeights.FC:
        raise ValueError("--ddr-weights fc: the board shells do not connect DDR-streamed "
                         "weights yet; build, estimate and cosim take it")
    opts = replace(opts, ddr_weights=DdrWeights.OFF)
    present = flow.tools_present()
    if run and not present:
        raise ToolMissingError(f"{flow.tool} is not installed; without --run the project is "
                               "written for a machine that has it")
    run = present if run is None else run
    try:
        result = build(replace(opts, on_chip_only=not flow.partitioned), progress=say)
    except NotOnChipError as exc:
        raise NotOnChipError(exc.partitions, exc.board,
                             f"{board.name}'s board flow takes designs that fit on chip "
                             f"(partitioned designs have one on "
                             f"{', '.join(partitioned_boards())})") from None
    warnings = add_logic_depths(result.report, _depths([p.hw for p in result.parts], board, say),
                                max_logic_levels(board.family, board.clock_mhz))
    images, outputs = _golden(result, GOLDEN_FRAMES)
    if len(result.parts) > 1:
        return _partitioned(result, flow, run, images, outputs, warnings, say)
    design = design_from_build(result, outputs[0].shape)
    impl = None
    with replacing_dir(design.board_dir) as work:
        say(f"writing the {board.name} project to {design.board_dir}/")
        private = replace(design, board_dir_name=work.name)
        project = flow.write(private)
        _golden_files(work / "golden", images, outputs)
        if run:
            impl = flow.run(project, private, progress=say)
    project = replace(project, board_dir=design.board_dir)
    if impl is not None:
        impl = replace(impl, bitstream=str(Path(design.board_dir_name) / project.bitstream))
        warnings += add_implementation(result.report, impl)
    write_report(result.report, result.out_dir)
    return BitstreamResult(result, design, project, impl, warnings)


def _partitioned(result: BuildResult, flow: BoardFlow, run: bool, images, outputs,
                 warnings: list[str], say) -> BitstreamResult:
    """``board/partition<k>/``, one project per partition, and beside them the host program
    that loads them in turn (``partitions.json``, ``golden/``, ``build_all.sh``, README)."""
    board = result.board
    designs = partition_designs(result)
    board_dir = designs[0].board_dir.parent
    plan = partition_plan(result, outputs[0].shape)
    impls = []
    with replacing_dir(board_dir) as work:
        say(f"writing {len(designs)} {board.name} projects, one per partition, to {board_dir}/")
        private = [replace(d, board_dir_name=f"{work.name}/{Path(d.board_dir_name).name}")
                   for d in designs]
        projects = [flow.write(d) for d in private]
        top = flow.write_partitioned(work, plan, projects)
        _golden_files(work / "golden", images, outputs)
        if run:
            for k, (project, design) in enumerate(zip(projects, private)):
                say(f"partition {k} of {len(projects)}:")
                impls.append(flow.run(project, design, progress=say))
    projects = [replace(p, board_dir=d.board_dir) for p, d in zip(projects, designs)]
    top = replace(top, board_dir=board_dir)
    impl = None
    if impls:
        for k, (detail, one) in enumerate(zip(result.report["partition_details"], impls)):
            detail["implementation"] = replace(
                one, bitstream=str(Path(designs[k].board_dir_name) / projects[k].bitstream)
            ).as_dict()
        impl = _worst(impls, str(Path(designs[0].board_dir_name).parent))
        warnings += add_implementation(result.report, impl)
    write_report(result.report, result.out_dir)
    return BitstreamResult(result, designs[0], top, impl, warnings, projects)


def _worst(impls: list[Implementation], bitstreams: str) -> Implementation:
    """One figure for partitions loaded in turn: the most of each resource any partition uses
    (the device must hold each), the lowest Fmax (all run at one clock)."""
    first = impls[0]
    return replace(first, **{f: max(getattr(i, f) for i in impls)
                             for f in ("lut", "ff", "dsp", "bram18", "uram")},
                   fmax_mhz=min(i.fmax_mhz for i in impls), bitstream=f"{bitstreams}/",
                   step_seconds={})
