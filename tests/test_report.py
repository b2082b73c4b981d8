"""Report rendering: schema checks, deterministic JSON/Markdown, PNG plots."""

import copy
import json

import pytest

from hwgen.report import REPORT_KEYS, bottleneck_stages, render_markdown, validate_report, \
    write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stage(name, op, pe, simd, cycles, dsp, bram18, lut):
    return dict(name=name, op=op, pe=pe, simd=simd, cycles_per_frame=cycles, dsp=dsp,
                bram18=bram18, lut=lut)


@pytest.fixture
def report():
    return {
        "model": "squeezenet1_1", "board": "vc707", "clock_mhz": 200.0,
        "cycles_per_frame": 40_000, "latency_cycles": 95_000, "fps": 5000.0,
        "mac_efficiency": 0.8125, "fits_on_chip": True, "partitions": 1,
        "resources": {"used": {"dsp": 1200, "bram18": 900, "lut": 150_000, "ff": 200_000,
                               "uram": 0},
                      "available": {"dsp": 2800, "bram18": 2060, "lut": 303_600,
                                    "ff": 607_200, "uram": 0}},
        "bandwidth": {"input_mbps": 752.6, "output_mbps": 20.0, "ddr_mbps": 0.0},
        "stages": [
            _stage("conv1", "conv", 16, 3, 38_000, 48, 4, 9000),
            _stage("fire2/squeeze1x1", "conv", 8, 32, 40_000, 256, 60, 20_000),
            _stage("fire2|expand", "fire", 16, 16, 36_000, 512, 120, 40_000),
            _stage("pool10", "global_avg_pool", 1, 1000, 1_000, 0, 2, 1200),
        ],
        "latency_ms": 0.475, "total_macs": 349_000_000, "utilization_cap": 0.85,
        "partition_details": [{"index": 0, "stages": ["conv1", "fire2/squeeze1x1"],
                               "resources": {"dsp": 304, "bram18": 64, "lut": 29_000, "ff": 1},
                               "ddr_bytes_per_frame": 0}],
        "model_vs_synth": {"conv1": {"lut_ratio": 1.07}},
    }


def test_write_report_files_and_json_round_trip(report, tmp_path):
    original = copy.deepcopy(report)
    paths = write_report(report, tmp_path / "out")
    names = [p.name for p in paths]
    assert names == ["report.json", "report.md", "stage_cycles.png", "resources.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert json.loads(paths[0].read_text()) == report
    assert report == original  # not mutated


def test_json_keys_in_schema_order_extras_after(report, tmp_path):
    # Build the dict in scrambled order: the file must still follow the schema.
    scrambled = dict(reversed(list(report.items())))
    scrambled["stages"] = [dict(reversed(list(s.items()))) for s in report["stages"]]
    path = write_report(scrambled, tmp_path)[0]
    loaded = json.loads(path.read_text())
    assert list(loaded)[:len(REPORT_KEYS)] == list(REPORT_KEYS)
    assert set(list(loaded)[len(REPORT_KEYS):]) == {"latency_ms", "total_macs",
                                                      "utilization_cap", "partition_details",
                                                      "model_vs_synth"}
    assert list(loaded["stages"][0]) == ["name", "op", "pe", "simd", "cycles_per_frame", "dsp",
                                         "bram18", "lut"]
    assert list(loaded["resources"]["used"]) == ["dsp", "bram18", "lut", "ff", "uram"]
    assert loaded == report


def test_markdown_contents(report, tmp_path):
    md = write_report(report, tmp_path)[1].read_text()
    assert md.startswith("# squeezenet1_1 on vc707 at 200 MHz")
    for stage in report["stages"]:
        assert stage["name"].replace("|", "\\|") in md
    assert "| **fire2/squeeze1x1** | conv |" in md
    assert "**40,000**" in md
    assert md.count("**") == 2 * 2 + 2  # name and cycles of one bottleneck, plus the legend
    assert "81.2 %" in md            # η as percent
    assert "0.475" in md             # latency in ms, as given
    assert "| dsp | 1,200 | 2,800 | 42.9 % | 2,380 |" in md
    assert "752.6" in md
    assert "## Partitions" in md and "model_vs_synth" in md
    assert "| uram |" not in md and "URAM" not in md     # the VC707 has none


def test_urams_listed_on_a_device_that_has_them(report):
    report["resources"]["available"]["uram"] = 96
    report["resources"]["used"]["uram"] = 40
    md = render_markdown(report)
    assert "| uram | 40 | 96 | 41.7 % |" in md
    assert "| # | stages | DSP | BRAM18 | LUT | FF | URAM |" in md


def test_latency_ms_derived_when_absent(report):
    del report["latency_ms"]
    assert "| latency (ms) | 0.475 |" in render_markdown(report)


def test_tied_bottlenecks_all_marked(report):
    report["stages"][0]["cycles_per_frame"] = 40_000
    assert bottleneck_stages(report) == ["conv1", "fire2/squeeze1x1"]
    assert "| **conv1** |" in render_markdown(report)


def test_pngs(report, tmp_path):
    for path in write_report(report, tmp_path)[2:]:
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert b"Software" not in path.read_bytes()


def test_writing_twice_is_byte_identical(report, tmp_path):
    first = [p.read_bytes() for p in write_report(report, tmp_path / "a")]
    second = [p.read_bytes() for p in write_report(copy.deepcopy(report), tmp_path / "b")]
    assert first[:2] == second[:2]
    # Same matplotlib in the same process: the PNGs match too.
    assert first[2:] == second[2:]


def test_no_cap_no_budget_column(report):
    del report["utilization_cap"]
    md = render_markdown(report)
    assert "budget" not in md
    assert "| dsp | 1,200 | 2,800 | 42.9 % |" in md


def test_numpy_values_written_as_numbers(report, tmp_path):
    np = pytest.importorskip("numpy")
    report["model_vs_synth"] = {"ratios": np.array([1.0, 2.0]), "n": np.int64(3)}
    loaded = json.loads(write_report(report, tmp_path)[0].read_text())
    assert loaded["model_vs_synth"] == {"ratios": [1.0, 2.0], "n": 3}


@pytest.mark.parametrize("key", REPORT_KEYS)
def test_validate_missing_top_level_key(report, key):
    del report[key]
    with pytest.raises(ValueError, match=f"missing key '{key}'"):
        validate_report(report)


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.update(cycles_per_frame=40_000.5), "'cycles_per_frame'"),
    (lambda r: r.update(fps="fast"), "'fps'"),
    (lambda r: r.update(fits_on_chip=1), "'fits_on_chip'"),
    (lambda r: r.update(partitions=True), "'partitions'"),
    (lambda r: r.update(fps=float("nan")), "'fps'"),
    (lambda r: r.update(stages={}), "'stages'"),
    (lambda r: r.update(stages=[]), "'stages'"),
    (lambda r: r["stages"][2].update(pe="16"), r"'stages\[2\].pe'"),
    (lambda r: r["resources"]["used"].update(dsp=1.5), "'resources.used.dsp'"),
    (lambda r: r["bandwidth"].update(ddr_mbps=None), "'bandwidth.ddr_mbps'"),
])
def test_validate_wrong_type(report, mutate, where):
    mutate(report)
    with pytest.raises(ValueError, match=where):
        validate_report(report)


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r["stages"][1].pop("simd"), r"'stages\[1\].simd'"),
    (lambda r: r["resources"].pop("available"), "'resources.available'"),
    (lambda r: r["resources"]["used"].pop("ff"), "'resources.used.ff'"),
    (lambda r: r["bandwidth"].pop("input_mbps"), "'bandwidth.input_mbps'"),
])
def test_validate_missing_nested_key(report, mutate, where):
    mutate(report)
    with pytest.raises(ValueError, match=f"missing key {where}"):
        validate_report(report)


def test_write_report_rejects_invalid(report, tmp_path):
    del report["fps"]
    with pytest.raises(ValueError, match="fps"):
        write_report(report, tmp_path)
    assert not (tmp_path / "report.json").exists()


def test_int_accepted_for_float_fields(report):
    report["clock_mhz"], report["fps"] = 200, 5000
    validate_report(report)
