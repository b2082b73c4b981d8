"""Registered multiplier: the one way a PE multiplies, so that every family gets a product
whose registers are the DSP slice's own.

``p = a * b`` (both signed) appears :data:`PRODUCT_STAGES` (or, for a product wider than one
DSP, :data:`WIDE_PRODUCT_STAGES`) clock enables after ``a`` and ``b``. Why a primitive: on the
ECP5 a product went from a fabric register across the die to a MULT18X18D and back to a fabric
register, about 5.4 + 3.9 + 5.4 ns, and yosys does not move registers into the MULT18X18D (its
ECP5 DSP inference maps the multiply only; docs/timing.md), so the registers must be written
as the cell's own. On Xilinx the same three registers are what Vivado and yosys's
``xilinx_dsp`` fold into a DSP48's A/B, M and P registers, so writing them out costs nothing.

Stages of :data:`PRODUCT_STAGES` = 3:

1. operand registers in fabric (they take a block RAM's slow clock-to-out, 5.6 ns on an ECP5
   DP16KD, and the local routing; on Xilinx the DSP48's A/B registers);
2. the multiplier's input registers (ECP5: MULT18X18D ``REG_INPUTA``/``REG_INPUTB``; Xilinx:
   the product register, MREG);
3. the product register (ECP5: ``REG_OUTPUT``; Xilinx: PREG).

:data:`WIDE_PRODUCT_STAGES` = 4 adds a register after the product: on ECP5, an operand wider
than 18 bits is split into 18-bit pieces, one MULT18X18D each (the low pieces unsigned), and
that register holds their shifted sum; elsewhere it is one more register.

In a PE's own Verilog (PE tests, PE synthesis) the primitive is Amaranth registers around
``a * b``; inside :func:`rtl_templates.rom.external_roms` (the whole-design emission) it is an
instance of a module per shape (:func:`multiplier_verilog`), whose ECP5 form is compiled in when
the Verilog is read with :data:`ECP5_DEFINE` defined (the ECP5 flow, its post-synthesis
simulation and the ECP5 synthesis checks do; Verilator and the Xilinx tools get the generic
form, the same function).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Instance, Module, Signal, Value, signed

from .resources import DeviceFamily, family
from .rom import active_rom_files

__all__ = ["PRODUCT_STAGES", "WIDE_PRODUCT_STAGES", "ECP5_DEFINE", "multiplier_verilog",
           "module_name", "registered_product", "product_cost", "ProductCost", "maps_to_dsp",
           "multiplier_dsps", "verilog_defines", "DSP_MIN_PRODUCT_BITS"]

PRODUCT_STAGES = 3
WIDE_PRODUCT_STAGES = 4
#: The Verilog macro that selects the MULT18X18D form of the multiplier modules.
ECP5_DEFINE = "HWGEN_ECP5"
#: yosys ``synth_xilinx`` keeps products narrower than this many bits in LUTs (DSP_Y_MINWIDTH).
DSP_MIN_PRODUCT_BITS = 9
#: Operand width of one ECP5 MULT18X18D.
_ECP5_PORT = 18


def maps_to_dsp(a_bits: int, b_bits: int) -> bool:
    """Whether the tools put an ``a_bits`` x ``b_bits`` signed product in DSP slices."""
    return a_bits + b_bits >= DSP_MIN_PRODUCT_BITS and min(a_bits, b_bits) >= 2


def multiplier_dsps(a_bits: int, b_bits: int, fam: str | DeviceFamily = "7series") -> int:
    """DSP slices of one signed ``a_bits`` x ``b_bits`` multiplier (tiled when wider).

    Zero when the product is too narrow to be worth a DSP (:func:`maps_to_dsp`).
    """
    if not maps_to_dsp(a_bits, b_bits):
        return 0
    da, db = family(fam).dsp_widths
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    return min(-(-a // da) * -(-b // db), -(-a // db) * -(-b // da))


def _ecp5_pieces(a_bits: int, b_bits: int, stages: int) -> int:
    """MULT18X18D pieces of the ECP5 form, 0 where the module falls back to the generic one
    (a narrow product, ``b`` wider than a port, or a split product without the stage its sum
    needs)."""
    if not maps_to_dsp(a_bits, b_bits) or b_bits > _ECP5_PORT:
        return 0
    pieces = -(-a_bits // _ECP5_PORT)
    return pieces if pieces == 1 or stages >= WIDE_PRODUCT_STAGES else 0


def verilog_defines(fam: str | DeviceFamily) -> list[str]:
    """The macros to define when reading hwgen's Verilog for ``fam``: a board family
    (:data:`rtl_templates.resources.FAMILIES`) or a yosys one (``"xc7"``, ``"ecp5"``, ...)."""
    name = fam.name if isinstance(fam, DeviceFamily) else fam
    return [ECP5_DEFINE] if name == "ecp5" else []


@dataclass(frozen=True)
class ProductCost:
    """What one registered product builds outside the DSP slices.

    Attributes
    ----------
    dsp : int
        DSP slices (MULT18X18D on ECP5).
    lut : int
        A LUT multiplier where the product is too narrow for a DSP, the pieces' sum on ECP5.
    operand_ff : tuple of (int, int)
        Flip-flops of the ``a`` and ``b`` operand registers (0 where they are the DSP's own).
        Separate because products sharing an operand share its register after synthesis
        merges identical flip-flops.
    ff : int
        The other flip-flops: product registers in fabric.
    """

    dsp: int
    lut: int
    operand_ff: tuple[int, int]
    ff: int


def product_cost(a_bits: int, b_bits: int, stages: int = PRODUCT_STAGES,
                 fam: str | DeviceFamily = "7series") -> ProductCost:
    """The cost of one :func:`registered_product`, a pure function of its widths.

    Xilinx: a product that maps to DSPs keeps its operand, M and P registers inside the DSP48,
    so only the fourth stage of a wide product is flip-flops. ECP5: the operand registers are
    flip-flops; the input and output registers are the MULT18X18D's; the fourth stage is
    flip-flops (a split product's sum: carry cells, two LUT4s for two bits). A product in
    LUTs: ``a_bits * b_bits`` LUTs and all its registers in fabric. Checked against yosys in
    ``tests/pe/test_multiplier.py``.
    """
    fam = family(fam)
    prod = a_bits + b_bits
    extra = stages - PRODUCT_STAGES
    if not maps_to_dsp(a_bits, b_bits):
        return ProductCost(0, a_bits * b_bits, (a_bits, b_bits), (stages - 1) * prod)
    if fam.name == "ecp5":
        pieces = _ecp5_pieces(a_bits, b_bits, stages)
        if pieces:
            # The pieces' sum: the bits above each piece's offset (18, 36, ...) in carry cells.
            adder = sum(prod - _ECP5_PORT * k for k in range(1, pieces))
            return ProductCost(pieces, adder, (a_bits, b_bits), extra * prod)
        return ProductCost(multiplier_dsps(a_bits, b_bits, fam), 0, (a_bits, b_bits),
                           (stages - 1) * prod)
    return ProductCost(multiplier_dsps(a_bits, b_bits, fam), 0, (0, 0), extra * prod)


def module_name(a_bits: int, b_bits: int, stages: int) -> str:
    """The Verilog module of one multiplier shape (:func:`multiplier_verilog`)."""
    return f"hwgen_mul_{a_bits}x{b_bits}_s{stages}"


def registered_product(m: Module, name: str, a: Value, b: Value, en: Value,
                       stages: int = PRODUCT_STAGES) -> Signal:
    """``a * b`` (signed) ``stages`` enabled cycles after ``a`` and ``b``.

    Every register of the product moves when ``en`` is high, as the PEs' pipelines do.

    Raises
    ------
    ValueError
        If ``stages`` is not :data:`PRODUCT_STAGES` or :data:`WIDE_PRODUCT_STAGES`.
    """
    if stages not in (PRODUCT_STAGES, WIDE_PRODUCT_STAGES):
        raise ValueError(f"stages must be {PRODUCT_STAGES} or {WIDE_PRODUCT_STAGES}, not {stages!r}")
    a, b = Value.cast(a).as_signed(), Value.cast(b).as_signed()
    product = Signal(signed(len(a) + len(b)), name=name)
    files = active_rom_files()
    if files is not None:
        files.multipliers.add((len(a), len(b), stages))
        m.submodules[name] = Instance(module_name(len(a), len(b), stages),
                                      i_clk=ClockSignal(), i_en=en, i_a=a, i_b=b, o_p=product)
        return product
    a_r = Signal(signed(len(a)), name=f"{name}_a")
    b_r = Signal(signed(len(b)), name=f"{name}_b")
    chain = [Signal(signed(len(product)), name=f"{name}_{k}") for k in range(2, stages)]
    with m.If(en):
        m.d.sync += [a_r.eq(a), b_r.eq(b), chain[0].eq(a_r * b_r),
                     *(later.eq(earlier) for earlier, later in zip(chain, chain[1:])),
                     product.eq(chain[-1])]
    return product


def _mult18(label: str, a: str, b: str, signed_a: str, p: str) -> str:
    """A MULT18X18D with its input and output registers on ``clk``/``en``."""
    def bits(port: str, count: int, net: str) -> str:
        return ", ".join(f".{port}{i}({net}[{i}])" for i in range(count))
    zeros = ", ".join(f".C{i}(1'b0)" for i in range(18))
    return f"""\
  MULT18X18D #(.REG_INPUTA_CLK("CLK0"), .REG_INPUTB_CLK("CLK0"), .REG_OUTPUT_CLK("CLK0"),
               .GSR("DISABLED"), .RESETMODE("SYNC")) {label} (
    {bits("A", 18, a)},
    {bits("B", 18, b)},
    {zeros},
    .SIGNEDA({signed_a}), .SIGNEDB(1'b1), .SOURCEA(1'b0), .SOURCEB(1'b0),
    .CLK0(clk), .CLK1(1'b0), .CLK2(1'b0), .CLK3(1'b0),
    .CE0(en), .CE1(1'b0), .CE2(1'b0), .CE3(1'b0),
    .RST0(1'b0), .RST1(1'b0), .RST2(1'b0), .RST3(1'b0),
    {bits("P", 36, p)});
"""


def _sign_extended(net: str, bits: int, width: int) -> str:
    """Verilog for ``net`` (``bits`` wide) sign-extended to ``width`` bits."""
    return net if bits == width else f"{{{{{width - bits}{{{net}[{bits - 1}]}}}}, {net}}}"


def multiplier_verilog(a_bits: int, b_bits: int, stages: int) -> str:
    """The module :func:`registered_product` instantiates for one shape, emitted next to the
    design's Verilog as the ROM modules are (one module per shape rather than one with
    parameters: yosys's ``synth_ecp5`` re-derives a flattened design from its AST when a
    parameterised module instantiates a parameterised black box, and then finds the module
    flattened away).

    Generic form: the operand registers, the product register, then ``stages - 2`` copies of
    it: a DSP48's A/B, M and P registers for Vivado and yosys. With :data:`ECP5_DEFINE`
    defined, a product for DSPs with ``b`` at most 18 bits is MULT18X18D cells with their
    input and output registers in use, after operand registers in fabric; an ``a`` wider
    than 18 bits is split into 18-bit pieces (the low ones unsigned), whose shifted sum is the
    fourth stage's register.
    """
    w = a_bits + b_bits
    name = module_name(a_bits, b_bits, stages)
    generic = (f"  reg signed [{w - 1}:0] {', '.join(f'r{k}' for k in range(2, stages + 1))};\n"
               f"  always @(posedge clk) if (en) begin r2 <= a_r * b_r;"
               + "".join(f" r{k} <= r{k - 1};" for k in range(3, stages + 1))
               + f" end\n  assign p = r{stages};\n")
    pieces = _ecp5_pieces(a_bits, b_bits, stages)
    if pieces:
        cells = "".join(
            f"  wire [17:0] a_p{k} = a_x[{18 * k + 17}:{18 * k}];\n  wire [35:0] part{k};\n"
            + _mult18(f"dsp{k}", f"a_p{k}", "b_x",
                      "1'b1" if k == pieces - 1 else "1'b0", f"part{k}")
            for k in range(pieces))
        total = " + ".join(f"($signed(part{k}) <<< {18 * k})" for k in range(pieces))
        if stages == PRODUCT_STAGES:
            tail = f"  assign p = part0[{w - 1}:0];\n"
        else:
            tail = (f"  reg signed [{w - 1}:0] sum_r;\n"
                    f"  always @(posedge clk) if (en) sum_r <= {total};\n"
                    f"  assign p = sum_r;\n")
        # Unsigned nets into the cells: a signed one makes yosys's Verilog frontend look the
        # black box up, mark the cell for re-elaboration, and fail after flattening.
        body = (f"`ifdef {ECP5_DEFINE}\n"
                f"  wire [{18 * pieces - 1}:0] a_x = {_sign_extended('a_r', a_bits, 18 * pieces)};\n"
                f"  wire [17:0] b_x = {_sign_extended('b_r', b_bits, 18)};\n{cells}{tail}"
                f"`else\n{generic}`endif\n")
    else:
        body = generic
    return (f"// p = a * b, signed, {stages} clock enables after a and b "
            f"(rtl_templates/multiplier.py)\n"
            f"module {name}(input clk, input en, input signed [{a_bits - 1}:0] a,\n"
            f"    input signed [{b_bits - 1}:0] b, output signed [{w - 1}:0] p);\n"
            f"  reg signed [{a_bits - 1}:0] a_r;\n  reg signed [{b_bits - 1}:0] b_r;\n"
            f"  always @(posedge clk) if (en) begin a_r <= a; b_r <= b; end\n"
            f"{body}endmodule\n")
