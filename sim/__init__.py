"""Simulation: Verilog generation, Verilator builds and cocotb stream testbenches."""
