"""The board catalog: figures from facts.md, validation, budgets and name lookup."""

import dataclasses
import math

import pytest

# Submodules, not the package: a stale editable install may see `boards` as a namespace package.
from boards.board import Board
from boards.catalog import BOARDS, UnknownBoardError, board_names, get_board
from rtl_templates.resources import FAMILIES, Resources


def _valid(**overrides) -> dict:
    fields = dict(name="toy", part="XC7Z020-1CLG400", family="7series", lut=1000, ff=2000,
                  dsp=10, bram18=20, clock_mhz=100.0, ddr_bytes=2**20, ddr_gbps=1.0,
                  source="test")
    fields.update(overrides)
    return fields


@pytest.mark.parametrize("name", board_names())
def test_catalog_boards_validate(name):
    board = get_board(name)
    # Rebuilding from the fields re-runs validation.
    assert Board(**dataclasses.asdict(board)) == board
    assert board.family in FAMILIES
    assert board.device_family.name == board.family
    assert board.source and board.host_link


def test_vc707_figures():
    b = get_board("vc707")
    assert (b.dsp, b.bram18, b.lut, b.ff, b.clock_mhz) == (2800, 2060, 303600, 607200, 200.0)
    assert b.family == "7series"
    assert b.ddr_bytes == 2**30 and b.ddr_gbps == 12.8
    assert b.available() == Resources(dsp=2800, bram18=2060, lut=303600, ff=607200)


def test_default_clocks_by_family():
    expected = {"7series": 200.0, "ultrascale": 250.0, "ecp5": 100.0}
    for board in BOARDS.values():
        assert board.clock_mhz == expected[board.family], board.name


@pytest.mark.parametrize("name", board_names())
def test_budget_is_floor_of_cap_times_available(name):
    board = get_board(name)
    full, budget = board.available(), board.budget()
    assert board.utilization_cap == 0.85
    for f in ("dsp", "bram18", "lut", "ff"):
        assert getattr(budget, f) == math.floor(17 * getattr(full, f) / 20)


def test_vc707_budget():
    assert get_board("vc707").budget() == Resources(dsp=2380, bram18=1751, lut=258060, ff=516120)


def test_custom_cap():
    b = Board(**_valid(utilization_cap=0.5, dsp=11))
    assert b.budget().dsp == 5
    assert Board(**_valid(utilization_cap=1.0)).budget() == Board(**_valid()).available()


@pytest.mark.parametrize("field, value", [
    ("lut", 0), ("ff", -1), ("dsp", -3), ("bram18", -1), ("uram", -1), ("lutram_kbits", -2),
    ("clock_mhz", 0), ("clock_mhz", -100.0), ("ddr_gbps", -1.0), ("ddr_bytes", -5),
    ("utilization_cap", 0), ("utilization_cap", 1.2), ("utilization_cap", -0.1),
    ("family", "virtex9"), ("name", ""), ("part", "  "), ("source", ""),
    ("bitstream_bits", -1), ("config_gbps", -3.2),
])
def test_bad_values_raise_value_error_quoting_value(field, value):
    with pytest.raises(ValueError, match=field) as err:
        Board(**_valid(**{field: value}))
    assert repr(value) in str(err.value)


@pytest.mark.parametrize("field, value", [
    ("lut", 1.5), ("dsp", True), ("bram18", "20"), ("clock_mhz", "200"), ("name", None),
    ("family", 7), ("utilization_cap", float("nan")), ("bitstream_bits", 1.5e6),
    ("config_gbps", "3.2"),
])
def test_bad_types_raise_type_error_quoting_value(field, value):
    with pytest.raises(TypeError, match=field) as err:
        Board(**_valid(**{field: value}))
    assert repr(value) in str(err.value)


def test_ddr_size_and_bandwidth_go_together():
    with pytest.raises(ValueError, match="ddr_bytes"):
        Board(**_valid(ddr_bytes=0))
    assert Board(**_valid(ddr_bytes=0, ddr_gbps=0.0)).ddr_bytes_per_cycle == 0


def test_family_accepts_device_family_object():
    assert Board(**_valid(family=FAMILIES["ecp5"])).family == "ecp5"


def test_boards_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_board("vc707").dsp = 1


def test_board_names_sorted_and_complete():
    assert board_names() == ["ecp5-85f", "pynq-z2", "u250", "ultra96", "vc707", "zcu102",
                             "zcu104"]


def test_unknown_board_lists_every_name_on_one_line():
    with pytest.raises(UnknownBoardError) as err:
        get_board("vc709")
    message = str(err.value)
    assert message == ("unknown board 'vc709'; known boards: "
                       "ecp5-85f, pynq-z2, u250, ultra96, vc707, zcu102, zcu104")
    assert "\n" not in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("alias, name", [
    ("pynq_z2", "pynq-z2"), ("PYNQ-Z2", "pynq-z2"), ("VC707", "vc707"), ("ulx3s", "ecp5-85f"),
    ("ECP5_85F", "ecp5-85f"), (" zcu104 ", "zcu104"),
])
def test_aliases(alias, name):
    assert get_board(alias) is BOARDS[name]


def test_ddr_bytes_per_cycle():
    assert get_board("vc707").ddr_bytes_per_cycle == pytest.approx(64.0)


def test_reconfiguration_time_is_the_bitstream_over_the_configuration_port():
    # UG470's XC7Z020 length (u-boot zynqpl.h) over UG909's 7-series 3.2 Gb/s.
    assert get_board("pynq-z2").reconfiguration_seconds == pytest.approx(32_364_512 / 3.2e9)
    assert get_board("vc707").reconfiguration_seconds == pytest.approx(162_187_488 / 3.2e9)
    # No cited UltraScale+ bitstream length: unknown, not guessed.
    assert get_board("zcu104").reconfiguration_seconds is None
    assert Board(**_valid(bitstream_bits=1000)).reconfiguration_seconds is None
