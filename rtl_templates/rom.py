"""Weight ROMs: inline in the Verilog, or as ``$readmemh`` files for whole networks.

A PE's ROM is an Amaranth ``lib.memory.Memory`` with ``init`` by default, which is what the PE
tests and the synthesis checks use. A whole network holds about a million weights; inline, they
cost half a minute of Verilog conversion and minutes of Verilator C++ compilation, and hide the
weights inside the RTL. Inside :func:`external_roms` every ROM instead becomes an instance of a
small synchronous ROM module (:data:`ROM_VERILOG`) that loads a hex file with ``$readmemh``,
which Vivado, yosys and Verilator all understand; the collector gets the files to write.

Both forms are the same circuit: a read port registered on ``sync`` with an enable, output 0
until the first enabled read.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib

import math

from amaranth.hdl import Array, ClockSignal, Instance, Module, Signal, Value, unsigned
from amaranth.lib import memory

from .resources import (BRAM_THRESHOLD_BITS, DeviceFamily, MemoryStyle, Resources, family,
                        memory_resources, mux_luts)

__all__ = ["RomFiles", "external_roms", "rom_read", "banked_rom_read", "rom_banks",
           "rom_resources", "active_rom_files", "ROM_BANK_WORDS", "block_ram", "lut_ram", "ROM_VERILOG"]

#: Words of one bank of a ROM in logic: 256 words are two LUT6 levels (four 64-word LUTs and
#: a 4:1 multiplexer). A deeper ROM in one piece is a multiplexer tree behind its address
#: register: 2,048 words measured 5 levels (SqueezeNet 1.1's fire6/expand1x1 on the ZCU104,
#: where 3 are allowed; docs/timing.md).
ROM_BANK_WORDS = 256

def _registered_ram(module: str, style: str) -> str:
    """A simple dual-port RAM module with a registered read port, placed by ``ram_style``."""
    return f"""\
module {module} #(parameter WIDTH = 8, DEPTH = 2, ADDR_BITS = 1)
    (input clk, input w_en, input [ADDR_BITS-1:0] w_addr, input [WIDTH-1:0] w_data,
     input r_en, input [ADDR_BITS-1:0] r_addr, output reg [WIDTH-1:0] r_data = 0);
  (* ram_style = "{style}" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
  always @(posedge clk) begin
    if (w_en) mem[w_addr] <= w_data;
    if (r_en) r_data <= mem[r_addr];   // read-first: not transparent, as lib.memory's port
  end
endmodule
"""


#: The ROM every external instance refers to; emitted next to the design's Verilog.
ROM_VERILOG = """\
// Synchronous ROM loaded from a hex file (one word per line); hwgen's weight store.
// The file is read only when one is given: tools that elaborate a module on its own with its
// default parameters (yosys read_verilog without -defer) must not look for a file named "".
module hwgen_rom_block #(parameter WIDTH = 8, DEPTH = 2, ADDR_BITS = 1, INIT_FILE = "")
    (input clk, input en, input [ADDR_BITS-1:0] addr, output reg [WIDTH-1:0] data = 0);
  (* rom_style = "block" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
  generate if (INIT_FILE != "") begin : load
    initial $readmemh(INIT_FILE, mem);
  end endgenerate
  always @(posedge clk) if (en) data <= mem[addr];
endmodule

""" + _registered_ram("hwgen_ram_block", "block") + """
module hwgen_ram_logic #(parameter WIDTH = 8, DEPTH = 2, ADDR_BITS = 1)
    (input clk, input w_en, input [ADDR_BITS-1:0] w_addr, input [WIDTH-1:0] w_data,
     input [ADDR_BITS-1:0] r_addr, output [WIDTH-1:0] r_data);
  (* ram_style = "distributed" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
  always @(posedge clk) if (w_en) mem[w_addr] <= w_data;
  assign r_data = mem[r_addr];         // asynchronous read: LUT RAM
endmodule

// A weight memory in UltraScale+ URAM288 (no initial contents: written by the weight load).
""" + _registered_ram("hwgen_uram_block", "ultra") + """
// A ROM in LUTs. Vivado calls that "distributed"; yosys (which defines YOSYS) calls it "logic",
// its "distributed" being LUT RAM, which a ROM cannot map to ("no valid mapping found").
module hwgen_rom_logic #(parameter WIDTH = 8, DEPTH = 2, ADDR_BITS = 1, INIT_FILE = "")
    (input clk, input en, input [ADDR_BITS-1:0] addr, output reg [WIDTH-1:0] data = 0);
`ifdef YOSYS
  (* rom_style = "logic" *)
`else
  (* rom_style = "distributed" *)
`endif
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  generate if (INIT_FILE != "") begin : load
    initial $readmemh(INIT_FILE, mem);
  end endgenerate
  always @(posedge clk) if (en) data <= mem[addr];
endmodule
"""


class RomFiles:
    """The hex files of the ROMs elaborated inside :func:`external_roms`.

    Parameters
    ----------
    prefix : str
        Path the Verilog's ``$readmemh`` uses for the files, relative to where the simulator
        or synthesis tool runs (e.g. ``"weights/"``).

    Attributes
    ----------
    files : dict[str, str]
        File name (content-addressed, so the same weights give the same name) to hex text.
    multipliers : set of (int, int, int)
        The ``(a_bits, b_bits, stages)`` shapes of the multipliers elaborated
        (:func:`rtl_templates.multiplier.multiplier_verilog` writes their modules).
    """

    def __init__(self, prefix: str = "weights/"):
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {prefix!r}")
        self.prefix = prefix
        self.files: dict[str, str] = {}
        self.multipliers: set[tuple[int, int, int]] = set()

    def add(self, width: int, words) -> str:
        """Record ``words`` and return the path the Verilog should load."""
        digits = max(1, -(-width // 4))
        text = "".join(f"{int(w):0{digits}x}\n" for w in words)
        name = "rom_" + hashlib.sha1(f"{width}\n{text}".encode()).hexdigest()[:16] + ".hex"
        self.files[name] = text
        return self.prefix + name


_ACTIVE: contextvars.ContextVar[RomFiles | None] = contextvars.ContextVar("hwgen_roms", default=None)


@contextlib.contextmanager
def external_roms(files: RomFiles):
    """Elaborate every :func:`rom_read` ROM as a ``$readmemh`` instance collecting into ``files``.

    Elaboration happens when the design is converted, so convert inside this block.
    """
    if not isinstance(files, RomFiles):
        raise TypeError(f"files must be RomFiles, not {files!r}")
    token = _ACTIVE.set(files)
    try:
        yield files
    finally:
        _ACTIVE.reset(token)


def active_rom_files() -> RomFiles | None:
    """The collector of the enclosing :func:`external_roms` (the whole-design emission), where
    the multipliers become module instances too (:mod:`rtl_templates.multiplier`), or None."""
    return _ACTIVE.get()


def rom_read(m: Module, name: str, width: int, words: list[int], addr, en,
             style: MemoryStyle = MemoryStyle.AUTO) -> Signal:
    """A ROM of ``words`` (``width`` bits each) read at ``addr`` when ``en``; its registered data.

    ``name`` names the submodule (keep it meaningful: it shows in the Verilog). ``style``
    says where the synthesis tools should put it (the ``rom_style`` attribute).
    """
    depth = len(words)
    if depth < 1:
        raise ValueError(f"a ROM needs at least one word, not {depth!r}")
    if not isinstance(style, MemoryStyle):
        raise TypeError(f"style must be a MemoryStyle, not {style!r}")
    if style in (MemoryStyle.ULTRA, MemoryStyle.DDR):
        raise ValueError(f"a {style.value} weight memory is not a ROM: use "
                         "weight_load.loaded_memory or axi4_reader.Axi4Reader")
    block = style.is_block(width, depth)
    files = _ACTIVE.get()
    if files is None:
        # yosys's names, as the emitted design's hwgen_rom_logic under YOSYS: a "distributed"
        # ROM has no mapping there, and one without the attribute may go to block RAM by size.
        attrs = {"rom_style": "block" if block else "logic"}
        rom = memory.Memory(shape=unsigned(width), depth=depth, init=words, attrs=attrs)
        m.submodules[name] = rom
        port = rom.read_port(domain="sync")
        m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
        return port.data
    addr_bits = max(1, (depth - 1).bit_length())
    a = Signal(addr_bits, name=f"{name}_addr")
    data = Signal(width, name=f"{name}_data")
    m.d.comb += a.eq(addr)
    m.submodules[name] = Instance(
        "hwgen_rom_block" if block else "hwgen_rom_logic",
        p_WIDTH=width, p_DEPTH=depth, p_ADDR_BITS=addr_bits, p_INIT_FILE=files.add(width, words),
        i_clk=ClockSignal("sync"), i_en=en, i_addr=a, o_data=data)
    return data


def rom_banks(width: int, depth: int, style: MemoryStyle = MemoryStyle.AUTO) -> int:
    """Banks :func:`banked_rom_read` splits a ``depth`` x ``width`` ROM into: one in block RAM
    or up to :data:`ROM_BANK_WORDS` words, else ``ceil(depth / ROM_BANK_WORDS)``."""
    if style.is_block(width, depth) or depth <= ROM_BANK_WORDS:
        return 1
    return -(-depth // ROM_BANK_WORDS)


def banked_rom_read(m: Module, name: str, width: int, words: list[int], addr, en,
                    style: MemoryStyle = MemoryStyle.AUTO) -> Value:
    """:func:`rom_read` for a ROM whose data the caller registers: a ROM in logic deeper than
    :data:`ROM_BANK_WORDS` becomes banks, each read into its own register, and the data is
    the bank chosen by the registered bank number (a multiplexer of ``log4(banks)`` LUT
    levels between registers). Valid when :func:`rom_read`'s would be: the cycle after ``en``.
    """
    banks = rom_banks(width, len(words), style)
    if banks == 1:
        return rom_read(m, name, width, words, addr, en, style)
    bank_bits = (ROM_BANK_WORDS - 1).bit_length()
    bank = Signal(range(banks), name=f"{name}_bank")
    with m.If(en):
        m.d.sync += bank.eq(addr[bank_bits:])
    data = [rom_read(m, f"{name}_bank{b}", width,
                     words[b * ROM_BANK_WORDS:(b + 1) * ROM_BANK_WORDS], addr[:bank_bits], en, style)
            for b in range(banks)]
    return Array(data)[bank]


def rom_resources(width: int, depth: int, fam: str | DeviceFamily = "7series",
                  style: MemoryStyle = MemoryStyle.AUTO) -> Resources:
    """What :func:`banked_rom_read` builds. In block RAM: :func:`memory_resources`. In logic,
    per bit and bank, a LUT per :attr:`~rtl_templates.resources.DeviceFamily.lutram_bits`
    words and a multiplexer (:func:`~rtl_templates.resources.mux_luts`) of its
    :attr:`~rtl_templates.resources.DeviceFamily.rom_tree_words`-word trees; the bank
    multiplexer; each bank's output register and the bank register. Checked against yosys
    (xcup and ECP5) in ``tests/pe/test_rom.py``."""
    if style.is_block(width, depth):
        return memory_resources(width, depth, fam, style)
    fam = family(fam)
    banks = rom_banks(width, depth, style)
    sizes = [min(ROM_BANK_WORDS, depth - b * ROM_BANK_WORDS) for b in range(banks)]
    per_bit = sum(math.ceil(d / fam.lutram_bits) + mux_luts(math.ceil(d / fam.rom_tree_words), fam)
                  for d in sizes)
    return Resources(lut=width * (per_bit + mux_luts(banks, fam)),
                     ff=banks * width + (banks - 1).bit_length())


class _Port:
    def __init__(self, name: str, width: int, addr_bits: int, write: bool):
        self.addr = Signal(addr_bits, name=f"{name}_addr")
        self.data = Signal(width, name=f"{name}_data")
        self.en = Signal(name=f"{name}_en", init=0 if write else 1)


def _check_shape(width, depth) -> None:
    for what, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a positive int, not {value!r}")


def _ram(m: Module, name: str, width: int, depth: int, *, registered: bool):
    """A simple dual-port RAM with a registered (with enable) or an asynchronous read port:
    an Amaranth memory, or inside :func:`external_roms` an instance of ``hwgen_ram_block`` /
    ``hwgen_ram_logic`` (the same circuits without the entry-by-entry zero ``init``)."""
    if _ACTIVE.get() is None:
        ram = memory.Memory(shape=unsigned(width), depth=depth, init=[])
        m.submodules[name] = ram
        return ram.write_port(), ram.read_port(domain="sync" if registered else "comb")
    addr_bits = max(1, (depth - 1).bit_length())
    wr, rd = _Port(f"{name}_w", width, addr_bits, True), _Port(f"{name}_r", width, addr_bits, False)
    read_enable = {"i_r_en": rd.en} if registered else {}
    m.submodules[name] = Instance(
        "hwgen_ram_block" if registered else "hwgen_ram_logic",
        p_WIDTH=width, p_DEPTH=depth, p_ADDR_BITS=addr_bits,
        i_clk=ClockSignal("sync"), i_w_en=wr.en, i_w_addr=wr.addr, i_w_data=wr.data,
        **read_enable, i_r_addr=rd.addr, o_r_data=rd.data)
    return wr, rd


def block_ram(m: Module, name: str, width: int, depth: int):
    """A simple dual-port RAM (a write port, a registered non-transparent read port with
    enable); returns ``(write_port, read_port)`` with ``addr``/``data``/``en``.

    Inside :func:`external_roms` a block-RAM-sized one is an instance of ``hwgen_ram_block``:
    the same circuit, without the all-zero ``init`` Amaranth writes out entry by entry (which
    costs seconds per line buffer when converting a whole network).
    """
    _check_shape(width, depth)
    if width * depth < BRAM_THRESHOLD_BITS:   # LUT RAM: the tools keep it in logic anyway
        ram = memory.Memory(shape=unsigned(width), depth=depth, init=[])
        m.submodules[name] = ram
        return ram.write_port(), ram.read_port(domain="sync")
    return _ram(m, name, width, depth, registered=True)


def lut_ram(m: Module, name: str, width: int, depth: int):
    """A simple dual-port distributed RAM: a write port and an asynchronous read port; returns
    ``(write_port, read_port)`` with ``addr``/``data`` (and ``en`` on the write port).

    For state a PE indexes by channel group every cycle (running sums, stored gates): unlike a
    ring of shift registers it costs LUT RAM, not flip-flops, and Verilator evaluates one array
    access instead of moving every register each cycle. The contents start undefined; callers
    write an entry before reading it. Inside :func:`external_roms` it is an instance of
    ``hwgen_ram_logic`` (no entry-by-entry zero ``init`` in the Verilog).
    """
    _check_shape(width, depth)
    return _ram(m, name, width, depth, registered=False)
