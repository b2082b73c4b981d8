"""Test distribution over CPUs (``make test`` runs pytest-xdist with ``--dist loadgroup``).

A test file's tests share its Verilator benches, built once per process into ``sim_build/``
(:class:`sim.bench.VerilatorBench`), so each file runs in one worker. Whole-network
co-simulations build their own content-addressed Verilator models, so they spread over the
workers one by one: they are most of the suite's time.
"""

import pytest

#: Files whose tests are independent of each other and may run in different workers.
SPREAD = {"test_network_cosim.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(config.rootpath))))
