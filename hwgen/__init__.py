"""hwgen: FPGA dataflow accelerator generator and bit-exact co-simulator for compact CNNs."""

__version__ = "0.1.0"
