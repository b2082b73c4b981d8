"""Running an Amaranth testbench on a component, for the PE tests that drive ports by hand."""

from amaranth.sim import Simulator


def simulate(dut, bench) -> None:
    """Run async testbench ``bench(ctx)`` against ``dut`` on a 1 MHz clock."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
