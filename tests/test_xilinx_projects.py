"""The Xilinx projects, checked structurally: every generated TCL runs in a real Tcl
interpreter with Vivado's commands recorded (boards.xilinx.tcl_check), and the recorded calls
are checked against the design. No Vivado runs here (docs/xilinx_flow.md says what that leaves
unproven)."""

from __future__ import annotations

import configparser
import dataclasses
import re
import sys
import types
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from boards import get_board
from boards.design import BoardDesign, BoardProject, ToolMissingError
from boards.host import pynq_driver, xdma_host, xrt_host
from boards.host.frames import beats_to_bytes, bytes_to_beats, frame_to_beats
from boards.xilinx import UnsupportedBoardError, run_project, write_project
from boards.xilinx.reports import ReportFormatError, parse_timing, parse_utilization
from boards.xilinx.platforms import PLATFORMS, part_name
from boards.xilinx.tcl_check import GENERATED, record_tcl
from boards.xilinx.zynq import Zynq7000Project, ZynqMPProject

ZYNQ = ("pynq-z2", "zcu104", "ultra96", "zcu102")
READS = ("add_files", "read_verilog", "read_xdc", "source", "import_files")


def _design(board: str, out: Path) -> BoardDesign:
    from hwgen.build import BuildOptions, build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = build(BuildOptions(model="mobilenet_v1", board=board, out_dir=out / board,
                               model_options={"resolution": 32, "width": 0.25,
                                              "num_classes": 10}))
    e = r.emitted[0]
    return BoardDesign(
        name="mobilenet_v1", board=r.board, build_dir=r.out_dir, verilog=e.verilog,
        weight_files=tuple(e.weight_files), in_lanes=e.in_lanes, in_bits=e.in_bits,
        in_beats_per_frame=e.in_beats_per_frame, out_lanes=e.out_lanes, out_bits=e.out_bits,
        out_beats_per_frame=e.out_beats_per_frame, input_shape=tuple(r.loaded.model.input_shape),
        output_shape=tuple(r.loaded.model.output_shape), clock_mhz=r.board.clock_mhz)


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw")
    built = {board: _design(board, out) for board in ("pynq-z2", "zcu104", "vc707", "u250")}
    # Ultra96 and ZCU102 get the ZCU104's design (same family and clock; only the project
    # differs), in folders of their own.
    for board in ("ultra96", "zcu102"):
        built[board] = dataclasses.replace(built["zcu104"], board=get_board(board),
                                           build_dir=out / board)
    return built


def _part_matches(part: str, board: str) -> bool:
    """The recorded -part is the platform's, and its device and package are the catalog's."""
    platform = PLATFORMS[board](toolchain="Vivado")
    catalog = get_board(board).part.lower()
    return part == part_name(platform) and platform.device in catalog and \
        (platform.package in catalog or catalog == platform.device)


def _reads_exist(calls, cwd: Path) -> list[str]:
    files = [a for c in calls if c.command in READS for a in c.positional
             if not a.startswith(GENERATED)]
    assert files, "the script reads no file"
    return [f for f in files if not (cwd / f).exists()]


def _values(calls, key: str) -> list[str]:
    """Values given to CONFIG.<key> in set_property calls (-dict lists and plain form)."""
    found = []
    for c in calls:
        if c.command != "set_property":
            continue
        tokens = [t for a in c.args for t in a.split()] if "-dict" in c.args else list(c.args)
        found += [tokens[i + 1].strip("{}") for i, t in enumerate(tokens[:-1])
                  if t == f"CONFIG.{key}"]
    return found


def _stream_connected(calls, start: str, end: str) -> bool:
    """``start`` reaches ``end`` over connect_bd_intf_net, through converter cells only."""
    edges: dict[str, set[str]] = {}
    for c in calls:
        if c.command == "connect_bd_intf_net":
            a, b = c.args
            edges.setdefault(a, set()).add(b)
            edges.setdefault(b, set()).add(a)
    converters = {c.args[-1] for c in calls if c.command == "create_bd_cell"
                  and any("axis_dwidth_converter" in a or "axis_clock_converter" in a
                          for a in c.args)}
    seen, todo = {start}, [start]
    while todo:
        pin = todo.pop()
        if pin == end:
            return True
        cell = pin.split("/")[0]
        nxt = set(edges.get(pin, ()))
        if cell in converters:
            nxt |= {f"{cell}/S_AXIS", f"{cell}/M_AXIS"}
        todo += [p for p in nxt - seen]
        seen |= nxt
    return False


def _verilog_ports(text: str, module: str) -> set[str]:
    header = re.search(rf"module\s+{module}\s*\((.*?)\);", text, re.S)
    assert header, f"no module {module}"
    return {re.split(r"[\s\]]", p.strip())[-1] for p in header.group(1).split(",")}


@pytest.mark.parametrize("board", ZYNQ)
def test_zynq_block_design(designs, board):
    d = designs[board]
    project = write_project(d)
    calls = record_tcl("build.tcl", d.board_dir)
    part = next(c.option("-part") for c in calls if c.command == "create_project")
    assert _part_matches(part, board)
    assert _reads_exist(calls, d.board_dir) == []
    writer = Zynq7000Project if board == "pynq-z2" else ZynqMPProject
    assert [float(v) for v in _values(calls, writer.clock_property)] == [d.clock_mhz]
    assert any(c.command == "create_bd_cell" and c.option("-reference") == "hwgen_top"
               and c.args[-1] == "hwgen" for c in calls)
    assert _values(calls, "c_include_sg") == ["0"]
    assert _stream_connected(calls, "axi_dma/M_AXIS_MM2S", "hwgen/s_axis")
    assert _stream_connected(calls, "hwgen/m_axis", "axi_dma/S_AXIS_S2MM")
    # Widths: the DMA side is a power of two; a converter's accelerator side is tdata.
    dma_in = int(_values(calls, "c_m_axis_mm2s_tdata_width")[0])
    assert dma_in >= d.in_tdata_width and dma_in & (dma_in - 1) == 0
    if dma_in != d.in_tdata_width:
        assert _values(calls, "M_TDATA_NUM_BYTES")[0] == str(d.in_tdata_width // 8)
    assert any(c.command == "connect_bd_intf_net" and c.args[0].startswith("axi_mem/M00")
               and "HP0" in c.args[1] for c in calls)
    assert [c.args[-1] for c in calls if c.command == "write_bitstream"] == ["top.bit"]
    assert any(c.command == "file_copy" and c.args[-1] == "top.hwh" for c in calls)
    assert project.run_command in (d.board_dir / "README.md").read_text()
    assert {"frames.py", "design.json"} <= {p.name for p in project.files}


def test_vc707_xdma_shell(designs):
    d = designs["vc707"]
    project = write_project(d)
    calls = record_tcl("vc707_shell.tcl", d.board_dir)
    assert _part_matches(next(c.option("-part") for c in calls
                              if c.command == "create_project"), "vc707")
    assert _reads_exist(calls, d.board_dir) == []
    assert any(c.command == "source" and c.args[0].endswith("shell_bd.tcl") for c in calls)
    assert [float(v) for v in _values(calls, "CLKOUT1_REQUESTED_OUT_FREQ")] == [d.clock_mhz]
    assert _values(calls, "xdma_axi_intf_mm") == ["AXI_Stream"]
    assert _values(calls, "pl_link_cap_max_link_width") == ["X8"]
    assert _values(calls, "pl_link_cap_max_link_speed") == ["5.0_GT/s"]
    assert _stream_connected(calls, "xdma/M_AXIS_H2C_0", "hwgen/s_axis")
    assert _stream_connected(calls, "hwgen/m_axis", "xdma/S_AXIS_C2H_0")
    assert [c.args[-1] for c in calls if c.command == "write_bitstream"] == ["vc707_shell.bit"]
    # The XDC Amaranth wrote: every constrained port is a port of the top, all PCIe lanes
    # and the reference clock are placed, the 200 MHz input is constrained.
    top = (d.board_dir / "vc707_shell.v").read_text()
    ports = _verilog_ports(top, "vc707_shell")
    xdc = record_tcl("vc707_shell.xdc", d.board_dir)
    constrained = {re.sub(r"\[\d+\]$", "", c.args[0]) for c in xdc if c.command == "get_ports"}
    assert constrained and constrained <= ports
    locs = {c.args[2]: c.args[1] for c in xdc if c.command == "set_property" and c.args[0] == "LOC"}
    assert [locs[f"pcie_x8_0__rx__p[{k}]"] for k in range(8)] == \
        ["Y4", "AA6", "AB4", "AC6", "AD4", "AE6", "AF4", "AG6"]
    assert locs["pcie_x8_0__clk__p"] == "AB8" and locs["pcie_x8_0__perst_n__io"] == "AV35"
    assert any(c.command == "create_clock" and c.option("-period") == "5.0" for c in xdc)
    # The wrapper's ports the top connects are the block design's external ports.
    bd = record_tcl("shell_bd.tcl", d.board_dir)
    external = {c.args[-1] + suffix for c in bd if c.command == "create_bd_intf_port"
                for suffix in ("_clk_p", "_clk_n", "_rxp", "_rxn", "_txp", "_txn")}
    external |= {c.args[-1] for c in bd if c.command == "create_bd_port"}
    used = set(re.findall(r"\.(\w+)\(", top.split("shell_wrapper", 1)[1]))
    assert used and used <= external
    assert project.run_command in (d.board_dir / "README.md").read_text()


def test_vc707_uart_fallback(designs):
    d = designs["vc707"]
    project = write_project(d)
    folder = d.board_dir / "uart"
    assert {"uart/vc707_uart.tcl", "uart/serial_host.py", "uart/frames.py",
            "uart/design.json"} <= {str(p) for p in project.files}
    calls = record_tcl("vc707_uart.tcl", folder)
    assert _part_matches(next(c.option("-part") for c in calls
                              if c.command == "create_project"), "vc707")
    assert _reads_exist(calls, folder) == []
    assert any(c.command in READS and c.args[-1] == "hwgen_top.v" for c in calls)
    assert [c.args[-1] for c in calls if c.command == "write_bitstream"] == ["vc707_uart.bit"]
    top = (folder / "vc707_uart.v").read_text()
    assert re.search(r"^\s*hwgen_top\s", top, re.M), "the top does not instantiate hwgen_top"
    ports = _verilog_ports(top, "vc707_uart")
    xdc = record_tcl("vc707_uart.xdc", folder)
    constrained = {re.sub(r"\[\d+\]$", "", c.args[0]) for c in xdc if c.command == "get_ports"}
    assert constrained and constrained <= ports
    locs = {c.args[2]: c.args[1] for c in xdc if c.command == "set_property" and c.args[0] == "LOC"}
    assert (locs["uart_0__rx__io"], locs["uart_0__tx__io"]) == ("AU33", "AU36")
    assert locs["clk200_0__p"] == "E19" and locs["rst_0__io"] == "AV40"
    periods = [float(c.option("-period")) for c in xdc if c.command == "create_clock"]
    assert periods == [pytest.approx(1000 / d.clock_mhz)]
    readme = (folder / "README.md").read_text()
    assert "sh build_vc707_uart.sh" in readme and "--check ../golden/" in readme


def test_projects_take_weight_files_relative_to_the_current_folder(designs, monkeypatch):
    # `hwgen bitstream` run from the repository gets build/<name>/weights/... paths (a relative
    # --out); the project copies them from there, whatever its build_dir.
    d = designs["vc707"]
    monkeypatch.chdir(d.build_dir.parent)
    relative = tuple(Path(w).relative_to(d.build_dir.parent) for w in d.weight_files)
    assert relative and not relative[0].is_absolute()
    project = write_project(dataclasses.replace(d, weight_files=relative))
    copied = {p.name for p in project.files if p.parent.name == "weights"}
    assert copied == {w.name for w in relative}
    assert all((d.board_dir / "uart" / "weights" / w.name).exists() for w in relative)


def test_vc707_uart_shell_refuses_a_clock_it_cannot_make(designs):
    from boards.xilinx.vc707_uart import Vc707UartTop

    with pytest.raises(ValueError, match="200 MHz system clock; the design wants 250 MHz"):
        Vc707UartTop(dataclasses.replace(designs["vc707"], clock_mhz=250.0))


def test_u250_rtl_kernel(designs, monkeypatch):
    d = designs["u250"]
    project = write_project(d)
    calls = record_tcl("package_kernel.tcl", d.board_dir)
    part = next(c.option("-part") for c in calls if c.command == "create_project")
    assert part == "xcu250-figd2104-2l-e"
    assert _reads_exist(calls, d.board_dir) == []
    package = next(c for c in calls if c.command == "package_xo")
    assert package.option("-kernel_xml") == "kernel.xml"
    assert package.option("-ctrl_protocol") == "ap_ctrl_none"
    kernel = (d.board_dir / "hwgen_kernel.v").read_text()
    assert {"ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tdata", "m_axis_tlast"} <= \
        _verilog_ports(kernel, "hwgen_kernel")
    assert set(re.findall(r"\.(\w+)\(", kernel)) <= \
        _verilog_ports((d.board_dir / "rtl/hwgen_top.v").read_text(), "hwgen_top")
    xml_ports = {p.get("name"): int(p.get("dataWidth"))
                 for p in ET.parse(d.board_dir / "kernel.xml").iter("port")}
    widths = {name: int(re.search(rf"\[(\d+):0\]\s+{name}_tdata", kernel).group(1)) + 1
              for name in ("s_axis", "m_axis")}
    assert xml_ports == widths and widths["s_axis"] >= d.in_tdata_width
    movers = (d.board_dir / "movers.cpp").read_text()
    assert f"ap_axiu<{widths['s_axis']}, 0, 0, 0>> &out" in movers
    assert f"ap_axiu<{widths['m_axis']}, 0, 0, 0>> &in" in movers
    cfg = configparser.ConfigParser(strict=False)
    cfg.read_string("[top]\n" + (d.board_dir / "link.cfg").read_text())
    assert float(cfg["top"]["kernel_frequency"]) == d.clock_mhz
    assert cfg["top"]["platform"].startswith("xilinx_u250")
    links = (d.board_dir / "link.cfg").read_text()
    assert "sc=mm2s.out:hwgen.s_axis" in links and "sc=hwgen.m_axis:s2mm.in" in links
    monkeypatch.setenv("HWGEN_BOARD_DIR", str(d.board_dir))
    post = record_tcl("post_route.tcl", d.board_dir)
    assert {"report_utilization", "report_timing_summary"} <= {c.command for c in post}
    assert project.run_command in (d.board_dir / "README.md").read_text()
    assert "xrt_host.py" in {p.name for p in project.files}


def test_an_ecp5_board_is_refused_naming_the_xilinx_boards(designs):
    design = dataclasses.replace(designs["vc707"], board=get_board("ecp5-85f"))
    with pytest.raises(UnsupportedBoardError) as err:
        write_project(design)
    assert "\n" not in str(err.value) and "vc707" in str(err.value) and "u250" in str(err.value)


def test_run_without_vivado_says_what_is_missing(designs, monkeypatch):
    monkeypatch.setenv("PATH", "")
    d = designs["pynq-z2"]
    project = BoardProject(board_dir=d.board_dir, run_command="vivado -mode batch",
                           tool="vivado", bitstream=Path("top.bit"))
    with pytest.raises(ToolMissingError, match="vivado"):
        run_project(project, d)


# --- host programs: the bytes they would move ---------------------------------------------

def _frames(d: BoardDesign, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(-128, 128, size=d.input_shape) for _ in range(n)]


def _outputs(d: BoardDesign, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.integers(-128, 128, size=d.output_shape) for _ in range(n)]


def test_pynq_driver_dmas_beats_and_decodes_outputs(designs, monkeypatch):
    d = designs["pynq-z2"]
    design = __import__("json").loads(d.host_json())
    frames, outputs = _frames(d, 2), _outputs(d, 2)
    sent = []
    replies = iter(beats_to_bytes(frame_to_beats(o, d.out_lanes), d.out_bits) for o in outputs)

    class Channel:
        def __init__(self, receive):
            self.receive = receive

        def transfer(self, buffer):
            if self.receive:
                buffer[:] = np.frombuffer(next(replies), dtype=np.uint8)
            else:
                sent.append(buffer.tobytes())

        def wait(self):
            pass

    class Overlay:
        def __init__(self, path):
            self.axi_dma = types.SimpleNamespace(sendchannel=Channel(False),
                                                 recvchannel=Channel(True))

    fake = types.SimpleNamespace(Overlay=Overlay,
                                 allocate=lambda shape, dtype: np.zeros(shape, dtype))
    monkeypatch.setitem(sys.modules, "pynq", fake)
    d.board_dir.mkdir(parents=True, exist_ok=True)   # standalone: no project test need run first
    (d.board_dir / "design.json").write_text(d.host_json())
    accelerator = pynq_driver.Accelerator(d.board_dir / "top.bit")
    got = accelerator.run(frames)
    assert sent == [beats_to_bytes(frame_to_beats(f, d.in_lanes), d.in_bits) for f in frames]
    assert all(np.array_equal(g, o) for g, o in zip(got, outputs))
    assert accelerator.fps > 0
    with pytest.raises(ValueError, match="input shape"):
        pynq_driver.encode_frame(np.zeros((2, 2, 3)), design)


def test_golden_pairs_are_read_in_index_order(tmp_path):
    for k in (10, 2):
        np.save(tmp_path / f"input_{k}.npy", np.full((1, 1, 1), k))
        np.save(tmp_path / f"output_{k}.npy", np.full((1,), -k))
    assert [int(i[0, 0, 0]) for i, _ in pynq_driver.load_golden(tmp_path)] == [2, 10]
    (tmp_path / "output_2.npy").unlink()
    with pytest.raises(FileNotFoundError, match="output_2"):
        pynq_driver.load_golden(tmp_path)


def test_xdma_host_writes_beats_and_reads_the_output_frame(designs, tmp_path):
    d = designs["vc707"]
    (tmp_path / "design.json").write_text(d.host_json())
    frame, output = _frames(d, 1)[0], _outputs(d, 1)[0]
    h2c, c2h = tmp_path / "h2c", tmp_path / "c2h"
    c2h.write_bytes(beats_to_bytes(frame_to_beats(output, d.out_lanes), d.out_bits))
    h2c.write_bytes(b"")
    card = xdma_host.XdmaAccelerator(tmp_path / "design.json", h2c=str(h2c), c2h=str(c2h))
    [got] = card.run([frame])
    assert h2c.read_bytes() == beats_to_bytes(frame_to_beats(frame, d.in_lanes), d.in_bits)
    assert np.array_equal(got, output)


def test_xrt_words_pad_each_beat_to_the_movers_width(designs):
    d = designs["u250"]
    frame = _frames(d, 1)[0]
    payload = beats_to_bytes(frame_to_beats(frame, d.in_lanes), d.in_bits)
    words = xrt_host.to_words(payload, d.in_lanes, d.in_bits)
    word = xrt_host.word_bytes(d.in_lanes, d.in_bits)
    write_project(d)   # standalone: the kernel wrapper, whatever other tests ran
    kernel = (d.board_dir / "hwgen_kernel.v").read_text()
    assert 8 * word == int(re.search(r"\[(\d+):0\]\s+s_axis_tdata", kernel).group(1)) + 1
    assert len(words) == d.in_beats_per_frame * word
    back = xrt_host.from_words(words, d.in_lanes, d.in_bits)
    assert np.array_equal(bytes_to_beats(back, d.in_lanes, d.in_bits),
                          frame_to_beats(frame, d.in_lanes))


# --- report parsers, on text laid out as Vivado prints it --------------------------------

# report_utilization, 7-series (Vivado 2023.1 layout with the Prohibited column; rows of a
# published XC7Z045 report).
UTIL_7SERIES = """\
1. Slice Logic
--------------

+----------------------------+------+-------+------------+-----------+-------+
|          Site Type         | Used | Fixed | Prohibited | Available | Util% |
+----------------------------+------+-------+------------+-----------+-------+
| Slice LUTs                 | 2175 |     0 |          0 |    218600 |  0.99 |
|   LUT as Logic             | 2049 |     0 |          0 |    218600 |  0.94 |
| Slice Registers            | 3218 |     0 |          0 |    437200 |  0.74 |
+----------------------------+------+-------+------------+-----------+-------+

3. Memory
---------

+-------------------+------+-------+------------+-----------+-------+
|     Site Type     | Used | Fixed | Prohibited | Available | Util% |
+-------------------+------+-------+------------+-----------+-------+
| Block RAM Tile    |  1.5 |     0 |          0 |       545 |  0.28 |
|   RAMB36/FIFO*    |    1 |     0 |          0 |       545 |  0.18 |
|     RAMB36E1 only |    1 |       |            |           |       |
|   RAMB18          |    1 |     0 |          0 |      1090 |  0.09 |
+-------------------+------+-------+------------+-----------+-------+

4. DSP
------

+-----------+------+-------+------------+-----------+-------+
| Site Type | Used | Fixed | Prohibited | Available | Util% |
+-----------+------+-------+------------+-----------+-------+
| DSPs      |   12 |     0 |          0 |       900 |  1.33 |
+-----------+------+-------+------------+-----------+-------+
"""

# report_utilization, UltraScale+ (CLB rows, URAM), same table layout.
UTIL_ULTRASCALE = UTIL_7SERIES.replace("Slice LUTs ", "CLB LUTs   ").replace(
    "Slice Registers", "CLB Registers  ").replace(
    "| DSPs      |   12 |", "| URAM      |    4 |     0 |          0 |        96 |  4.17 |\n"
                           "| DSPs      |   12 |")

# report_timing_summary (Vivado 2018.2 layout: sections framed by dashes, tables under a
# dashed rule; generated clocks indented).
TIMING = """\
------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)
    -------      -------  ---------------------  -------------------      -------      -------
     -0.412      -31.200                    117                97631        0.012        0.000


Timing constraints are not met.


------------------------------------------------------------------------------------------------
| Clock Summary
| -------------
------------------------------------------------------------------------------------------------

Clock                 Waveform(ns)         Period(ns)      Frequency(MHz)
-----                 ------------         ----------      --------------
clk_fpga_0            {0.000 2.500}        5.000           200.000
clk_fpga_1            {0.000 5.000}        10.000          100.000


------------------------------------------------------------------------------------------------
| Intra Clock Table
| -----------------
------------------------------------------------------------------------------------------------

Clock                   WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints
-----                   -------      -------  ---------------------  -------------------
clk_fpga_0               -0.412      -31.200                    117                96020
clk_fpga_1                3.105        0.000                      0                 1611
"""


def test_utilization_counts_two_bram18_per_ramb36():
    u = parse_utilization(UTIL_7SERIES)
    assert (u.lut, u.ff, u.dsp, u.bram18, u.uram) == (2175, 3218, 12, 3, 0)
    us = parse_utilization(UTIL_ULTRASCALE)
    assert (us.lut, us.ff, us.uram) == (2175, 3218, 4)
    with pytest.raises(ReportFormatError, match="LUT"):
        parse_utilization("| DSPs | 1 |")


def test_fmax_comes_from_the_accelerator_clock_and_its_wns():
    t = parse_timing(TIMING, clock_mhz=200.0)
    assert (t.clock, t.period_ns, t.wns_ns) == ("clk_fpga_0", 5.0, -0.412)
    assert t.fmax_mhz == pytest.approx(1000 / 5.412)
    slow = parse_timing(TIMING, clock_mhz=100.0)
    assert slow.clock == "clk_fpga_1" and slow.fmax_mhz == pytest.approx(1000 / (10 - 3.105))
    with pytest.raises(ReportFormatError, match="Clock Summary"):
        parse_timing("nothing", 200.0)
