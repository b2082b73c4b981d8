"""U250: the accelerator as a free-running Vitis RTL kernel, fed by two HLS data movers.

Vitis's documented route for a streaming RTL kernel on an XDMA platform (UG1393, "RTL
kernels" and "Streaming connections"): the platform has no host-to-kernel stream, so an
``mm2s`` kernel reads a frame from device memory into the accelerator's AXI4-Stream input and
an ``s2mm`` kernel writes its output back; ``v++ --link`` joins them with ``sc=`` stream
connections. The accelerator kernel has no control interface (``ap_ctrl_none``): it runs as
soon as the xclbin is loaded; the host starts the two movers through XRT.

Files: ``hwgen_kernel.v`` (``ap_clk``/``ap_rst_n``, ``s_axis``/``m_axis`` at the movers'
power-of-two width, ``hwgen_top`` inside), ``package_kernel.tcl`` (IP packaging and
``package_xo`` with ``kernel.xml``), ``movers.cpp``, ``link.cfg``, ``post_route.tcl`` (the
reports, run by Vivado inside ``v++ --link``) and ``build.sh``. Nothing comes from Amaranth but
the part string.
"""

from __future__ import annotations

from pathlib import Path

from ..design import BoardDesign, BoardProject
from .platforms import U250Platform, part_name
from .project import (REPORTS_DIR, VIVADO_VERSION, copy_host, reports_tcl, stage_sources,
                      stream_width, write_text)

__all__ = ["AlveoKernelProject", "PLATFORM"]

#: The Vitis platform the link targets (the U250's current XDMA shell).
PLATFORM = "xilinx_u250_gen3x16_xdma_4_1_202210_1"
_XCLBIN = "hwgen.xclbin"
_KERNEL = "hwgen_kernel"


class AlveoKernelProject:
    """Writes the U250 Vitis project.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator, for the u250.

    Raises
    ------
    ValueError
        If the design is not for the u250.
    """

    def __init__(self, design: BoardDesign):
        if design.board.name != "u250":
            raise ValueError(f"the Alveo kernel is written for the u250, not {design.board.name!r}")
        self.design = design
        self.part = part_name(U250Platform(toolchain="Vivado"))
        self.in_width = stream_width(design.in_tdata_width)
        self.out_width = stream_width(design.out_tdata_width)

    def _kernel_verilog(self) -> str:
        d, wi, wo = self.design, self.in_width, self.out_width
        pad = wo - d.out_tdata_width
        out_data = "m_tdata" if pad == 0 else f"{{{pad}'d0, m_tdata}}"
        return f"""// {_KERNEL}: hwgen_top as a free-running Vitis RTL kernel. Written by hwgen.
// Streams run at the data movers' width; padding bits in are ignored, padding bits out zero.
module {_KERNEL} (
    input  wire           ap_clk,
    input  wire           ap_rst_n,
    input  wire [{wi - 1}:0]    s_axis_tdata,
    input  wire [{wi // 8 - 1}:0]    s_axis_tkeep,
    input  wire           s_axis_tvalid,
    output wire           s_axis_tready,
    input  wire           s_axis_tlast,
    output wire [{wo - 1}:0]    m_axis_tdata,
    output wire [{wo // 8 - 1}:0]    m_axis_tkeep,
    output wire           m_axis_tvalid,
    input  wire           m_axis_tready,
    output wire           m_axis_tlast
);
    wire [{d.out_tdata_width - 1}:0] m_tdata;
    assign m_axis_tdata = {out_data};
    assign m_axis_tkeep = {{{wo // 8}{{1'b1}}}};
    hwgen_top core (
        .clk(ap_clk), .rst(~ap_rst_n),
        .s_axis_tdata(s_axis_tdata[{d.in_tdata_width - 1}:0]), .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
        .m_axis_tdata(m_tdata), .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast)
    );
endmodule
"""

    def _kernel_xml(self) -> str:
        # Layout of the kernel.xml that package_xo takes for an ap_ctrl_none RTL kernel with
        # stream arguments (addressQualifier 4 = stream), as in Vitis's RTL-kernel examples.
        def arg(index: int, name: str, mode: str, width: int) -> tuple[str, str]:
            port = f'      <port name="{name}" mode="{mode}" dataWidth="{width}" portType="stream"/>'
            stream = f"stream&lt;ap_axiu&lt;{width},0,0,0&gt;&gt;&amp;"
            argument = (f'      <arg name="{name}" addressQualifier="4" id="{index}" port="{name}" '
                        f'size="0x0" offset="0x0" hostOffset="0x0" hostSize="0x0" '
                        f'type="{stream}"/>')
            return port, argument

        ports, args = zip(arg(0, "s_axis", "read_only", self.in_width),
                          arg(1, "m_axis", "write_only", self.out_width))
        return "\n".join([
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<root versionMajor="1" versionMinor="6">',
            f'  <kernel name="{_KERNEL}" language="ip_c" vlnv="hwgen:kernel:{_KERNEL}:1.0" '
            'attributes="" preferredWorkGroupSizeMultiple="0" workGroupSize="1" '
            'interrupt="false" hwControlProtocol="ap_ctrl_none">',
            "    <ports>", *ports, "    </ports>",
            "    <args>", *args, "    </args>",
            "  </kernel>",
            "</root>",
        ]) + "\n"

    def _package_tcl(self) -> str:
        weights = " ".join(f"weights/{Path(w).name}" for w in self.design.weight_files)
        return "".join([
            f"# Package {_KERNEL} as a Vitis kernel (.xo). Written by hwgen for Vivado "
            f"{VIVADO_VERSION}.\n",
            f"create_project -force kernel_pack kernel_pack -part {self.part}\n",
            f"add_files -norecurse {_KERNEL}.v rtl/hwgen_top.v\n",
            # The ROM files go into the IP so the kernel's synthesis run can read them.
            (f"add_files -norecurse {weights}\n" if weights else ""),
            f"set_property top {_KERNEL} [current_fileset]\n",
            "update_compile_order -fileset sources_1\n",
            "ipx::package_project -root_dir kernel_ip -vendor hwgen -library kernel "
            "-taxonomy /KernelIP -import_files -set_current false\n",
            "ipx::unload_core kernel_ip/component.xml\n",
            "ipx::edit_ip_in_project -upgrade true -name kernel_edit -directory kernel_edit "
            "kernel_ip/component.xml\n",
            "set core [ipx::current_core]\n",
            "ipx::associate_bus_interfaces -busif s_axis -clock ap_clk $core\n",
            "ipx::associate_bus_interfaces -busif m_axis -clock ap_clk $core\n",
            "set_property sdx_kernel true $core\n",
            "set_property sdx_kernel_type rtl $core\n",
            "ipx::update_checksums $core\n",
            "ipx::save_core $core\n",
            "close_project -delete\n",
            f"package_xo -force -xo_path {_KERNEL}.xo -kernel_name {_KERNEL} "
            "-ip_directory kernel_ip -kernel_xml kernel.xml -ctrl_protocol ap_ctrl_none\n",
        ])

    def _movers(self) -> str:
        wi, wo = self.in_width, self.out_width
        return f"""// HLS data movers between device memory and the hwgen kernel's streams. Written by hwgen.
#include <ap_axi_sdata.h>
#include <ap_int.h>
#include <hls_stream.h>

extern "C" void hwgen_mm2s(const ap_uint<{wi}> *in, hls::stream<ap_axiu<{wi}, 0, 0, 0>> &out,
                           unsigned int beats) {{
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE axis port = out
    for (unsigned int i = 0; i < beats; i++) {{
#pragma HLS PIPELINE II = 1
        ap_axiu<{wi}, 0, 0, 0> word;
        word.data = in[i];
        word.keep = -1;
        word.last = i == beats - 1;
        out.write(word);
    }}
}}

extern "C" void hwgen_s2mm(hls::stream<ap_axiu<{wo}, 0, 0, 0>> &in, ap_uint<{wo}> *out,
                           unsigned int beats) {{
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem
    for (unsigned int i = 0; i < beats; i++) {{
#pragma HLS PIPELINE II = 1
        out[i] = in.read().data;
    }}
}}
"""

    def _link_cfg(self) -> str:
        return "\n".join([
            f"# v++ --link configuration for {PLATFORM}. Written by hwgen for Vitis "
            f"{VIVADO_VERSION}.",
            f"platform={PLATFORM}",
            f"kernel_frequency={self.design.clock_mhz:g}",
            "",
            "[connectivity]",
            "nk=hwgen_mm2s:1:mm2s",
            "nk=hwgen_s2mm:1:s2mm",
            f"nk={_KERNEL}:1:hwgen",
            "sc=mm2s.out:hwgen.s_axis",
            "sc=hwgen.m_axis:s2mm.in",
            "",
            "[vivado]",
            "prop=run.impl_1.STEPS.ROUTE_DESIGN.TCL.POST=post_route.tcl",
        ]) + "\n"

    def _build_sh(self) -> str:
        return "\n".join([
            "#!/bin/sh",
            f"# Build {_XCLBIN}. Written by hwgen for Vitis {VIVADO_VERSION}; run from this folder.",
            "set -e",
            # post_route.tcl runs inside v++'s Vivado run folder; it writes the reports here.
            'export HWGEN_BOARD_DIR="$(pwd)"',
            "vivado -mode batch -source package_kernel.tcl -log package_kernel.log",
            f"v++ -c -t hw --platform {PLATFORM} -k hwgen_mm2s -o hwgen_mm2s.xo movers.cpp",
            f"v++ -c -t hw --platform {PLATFORM} -k hwgen_s2mm -o hwgen_s2mm.xo movers.cpp",
            # v++ resolves the post-route hook from its run folder: give it an absolute path.
            'sed -i "s|TCL.POST=.*|TCL.POST=$HWGEN_BOARD_DIR/post_route.tcl|" link.cfg',
            f"v++ -l -t hw --config link.cfg -o {_XCLBIN} {_KERNEL}.xo hwgen_mm2s.xo hwgen_s2mm.xo",
        ]) + "\n"

    def _readme(self) -> str:
        d = self.design
        return f"""# {d.name} on u250: Vitis RTL kernel

Written by hwgen for Vivado and Vitis {VIVADO_VERSION}, platform `{PLATFORM}`
(part `{self.part}`), XRT 2.16.

Build (packages the kernel, compiles the data movers, links; writes `{_XCLBIN}` and
`reports/`):

```sh
sh build.sh
```

How the host talks to the board: XRT (`pyxrt`) loads `{_XCLBIN}`; `{_KERNEL}` is free-running
(`ap_ctrl_none`) and starts with it. For each frame the host writes the input beats into a
device buffer, starts `hwgen_s2mm` (output buffer, beat count) and `hwgen_mm2s` (input
buffer, beat count), waits for both and reads the output buffer back:

```sh
python3 xrt_host.py {_XCLBIN} --check golden/     # golden/: input_<k>.npy, output_<k>.npy
```

Streams run at the movers' width ({self.in_width} bits in, {self.out_width} out): every beat
is `frames.beats_to_bytes` of one beat, zero-padded to the word. The kernels run at
{d.clock_mhz:g} MHz (`kernel_frequency` in `link.cfg`), the report's clock.
"""

    def write(self) -> BoardProject:
        """Write the project into ``design.board_dir``."""
        board_dir = self.design.board_dir
        files = stage_sources(self.design) + copy_host(self.design, "xrt_host.py")
        for name, text in ((f"{_KERNEL}.v", self._kernel_verilog()),
                           ("kernel.xml", self._kernel_xml()),
                           ("package_kernel.tcl", self._package_tcl()),
                           ("movers.cpp", self._movers()), ("link.cfg", self._link_cfg()),
                           ("post_route.tcl", reports_tcl(f"$::env(HWGEN_BOARD_DIR)/{REPORTS_DIR}")),
                           ("build.sh", self._build_sh()), ("README.md", self._readme())):
            files.append(write_text(board_dir / name, text))
        return BoardProject(board_dir=board_dir,
                            files=sorted(p.relative_to(board_dir) for p in files),
                            run_command="sh build.sh", tool="v++", bitstream=Path(_XCLBIN))
