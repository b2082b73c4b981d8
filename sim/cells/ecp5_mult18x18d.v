// Simulation model of the ECP5 MULT18X18D in the two configurations hwgen's netlists hold
// (Lattice FPGA-TN-02205, "ECP5 and ECP5-5G sysDSP Usage Guide", MULT18X18D): P = A * B,
// each operand signed when its SIGNED pin is high, with every register bypassed
// (REG_*_CLK = "NONE": yosys's synth_ecp5 mapping of a multiply, share/lattice/dsp_map_18x18.v)
// or with the input registers (A and SIGNEDA, B and SIGNEDB) and the output register on CLK0,
// CE0 and RST0 (synchronous reset), as rtl_templates/multiplier.py instantiates it. C is
// unused. yosys ships only a black box for this cell; the post-synthesis simulation
// (sim/post_synth.py) needs its function. Any other configuration stops the simulation at
// time 0 rather than being modelled wrongly.
module MULT18X18D(
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
    output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34,
    output P35, SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    initial begin
        if (!(REG_INPUTA_CLK == "NONE" || REG_INPUTA_CLK == "CLK0" && REG_INPUTA_CE == "CE0"
              && REG_INPUTA_RST == "RST0")
            || !(REG_INPUTB_CLK == "NONE" || REG_INPUTB_CLK == "CLK0" && REG_INPUTB_CE == "CE0"
                 && REG_INPUTB_RST == "RST0")
            || !(REG_OUTPUT_CLK == "NONE" || REG_OUTPUT_CLK == "CLK0" && REG_OUTPUT_CE == "CE0"
                 && REG_OUTPUT_RST == "RST0")
            || REG_PIPELINE_CLK != "NONE" || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC") begin
            $display("MULT18X18D: only the combinational and the input/output-registered configurations are modelled");
            $finish;
        end
    end

    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_q = 0, b_q = 0;
    reg sa_q = 0, sb_q = 0;
    reg [35:0] p_q = 0;
    wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_q;
    wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_q;
    wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_q;
    wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_q;
    wire signed [18:0] a_ext = {sa & a[17], a};
    wire signed [18:0] b_ext = {sb & b[17], b};
    wire signed [37:0] product = a_ext * b_ext;
    always @(posedge CLK0) begin
        if (RST0) begin
            a_q <= 0; b_q <= 0; sa_q <= 0; sb_q <= 0; p_q <= 0;
        end else if (CE0) begin
            a_q <= a_in; b_q <= b_in; sa_q <= SIGNEDA; sb_q <= SIGNEDB; p_q <= product[35:0];
        end
    end
    wire [35:0] p = REG_OUTPUT_CLK == "NONE" ? product[35:0] : p_q;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
            P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1,
            P0} = p;
    assign SIGNEDP = sa | sb;
endmodule
