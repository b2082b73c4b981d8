"""Test order: the longest files first, so that ``make test``'s pytest-xdist workers (``--dist
loadfile``: a file's tests in one worker) do not end with one worker running them alone."""

import pytest

#: Files by running time, longest first (whole networks built and co-simulated on Verilator).
LONGEST_FIRST = ("test_ecp5_bitstream.py", "test_network_cosim_se_shuffle.py",
                 "test_network_cosim.py", "test_network_cocotb.py", "test_design_synthesis.py",
                 "test_estimate.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)   # stable: the order inside each file is kept
