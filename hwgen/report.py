"""Render a compiler report: ``report.json``, ``report.md`` and two PNG plots.

The compiler hands over a plain dict with a stable schema (:data:`REPORT_KEYS`, :data:`STAGE_KEYS`);
keys beyond the schema are carried into the JSON untouched and shown in the Markdown as far as
they are understood. Output is deterministic: the same dict always gives the same bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rtl_templates.resources import RESOURCE_FIELDS

__all__ = ["REPORT_KEYS", "STAGE_KEYS", "RESOURCE_KEYS", "BANDWIDTH_KEYS", "validate_report",
           "write_report", "render_markdown", "bottleneck_stages", "reconfiguration_note"]

# Types accepted per key; a float field takes an int too (JSON writes 200.0 as 200 in some tools).
_INT = (int,)
_NUM = (int, float)

# Top-level keys in the order report.json writes them.
_TOP_TYPES = {
    "model": (str,), "board": (str,), "clock_mhz": _NUM, "cycles_per_frame": _INT,
    "latency_cycles": _INT, "fps": _NUM, "mac_efficiency": _NUM, "fits_on_chip": (bool,),
    "partitions": _INT, "resources": (dict,), "bandwidth": (dict,), "stages": (list,),
}
REPORT_KEYS: tuple[str, ...] = tuple(_TOP_TYPES)
RESOURCE_KEYS: tuple[str, ...] = RESOURCE_FIELDS
BANDWIDTH_KEYS: tuple[str, ...] = ("input_mbps", "output_mbps", "ddr_mbps")
_STAGE_TYPES = {
    "name": (str,), "op": (str,), "pe": _INT, "simd": _INT, "cycles_per_frame": _INT,
    "dsp": _INT, "bram18": _INT, "lut": _INT,
}
STAGE_KEYS: tuple[str, ...] = tuple(_STAGE_TYPES)


def _check(where: str, value, types: tuple[type, ...]) -> None:
    # bool is an int subclass; a True cycle count is a bug, so only "fits_on_chip" takes bools.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise ValueError(f"report key {where!r} must be {names}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"report key {where!r} must be finite, not {value!r}")


def _check_keys(where: str, mapping: dict, types: dict) -> None:
    for key, accepted in types.items():
        path = f"{where}.{key}" if where else key
        if key not in mapping:
            raise ValueError(f"report is missing key {path!r}")
        _check(path, mapping[key], accepted)


def validate_report(report: dict) -> None:
    """Check ``report`` against the schema.

    Raises
    ------
    ValueError
        Naming the first missing or ill-typed key (``"stages[2].pe"``, ``"resources.used.dsp"``).
    """
    if not isinstance(report, dict):
        raise ValueError(f"report must be a dict, not {type(report).__name__}")
    _check_keys("", report, _TOP_TYPES)
    for part in ("used", "available"):
        if part not in report["resources"]:
            raise ValueError(f"report is missing key 'resources.{part}'")
        _check(f"resources.{part}", report["resources"][part], (dict,))
        _check_keys(f"resources.{part}", report["resources"][part],
                    {k: _INT for k in RESOURCE_KEYS})
    _check_keys("bandwidth", report["bandwidth"], {k: _NUM for k in BANDWIDTH_KEYS})
    if not report["stages"]:
        raise ValueError("report key 'stages' must list at least one stage, not []")
    for i, stage in enumerate(report["stages"]):
        _check(f"stages[{i}]", stage, (dict,))
        _check_keys(f"stages[{i}]", stage, _STAGE_TYPES)


def _ordered(mapping: dict, keys: tuple[str, ...]) -> dict:
    """Schema keys first, in schema order, then the rest in the order they came."""
    out = {k: mapping[k] for k in keys if k in mapping}
    out.update((k, v) for k, v in mapping.items() if k not in out)
    return out


def _schema_ordered(report: dict) -> dict:
    out = _ordered(report, REPORT_KEYS)
    resources = _ordered(report["resources"], ("used", "available"))
    for part in ("used", "available"):
        resources[part] = _ordered(resources[part], RESOURCE_KEYS)
    out["resources"] = resources
    out["bandwidth"] = _ordered(report["bandwidth"], BANDWIDTH_KEYS)
    out["stages"] = [_ordered(s, STAGE_KEYS) for s in report["stages"]]
    return out


def _json_default(value):
    # NumPy scalars and arrays slip into compiler output; write them as plain numbers and lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"report value {value!r} of type {type(value).__name__} is not JSON")


def bottleneck_stages(report: dict) -> list[str]:
    """Names of the stages with the most cycles per frame (several if tied)."""
    worst = max(s["cycles_per_frame"] for s in report["stages"])
    return [s["name"] for s in report["stages"] if s["cycles_per_frame"] == worst]


def _cap(report: dict) -> float | None:
    cap = report.get("utilization_cap")
    if isinstance(cap, (int, float)) and not isinstance(cap, bool) and 0 < cap <= 1:
        return float(cap)
    return None


def _latency_ms(report: dict) -> float:
    given = report.get("latency_ms")
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        return float(given)
    return report["latency_cycles"] / (report["clock_mhz"] * 1e3)


def _cell(value) -> str:
    """One Markdown table cell: thousands separators, no stray pipes or newlines."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r if isinstance(r, str) else _cell(r) for r in row) + " |"
              for row in rows]
    return lines


def shown_resources(report: dict) -> tuple[str, ...]:
    """The resources a readable report lists: URAM only on a device that has it."""
    avail = report["resources"]["available"]
    return tuple(k for k in RESOURCE_KEYS if k != "uram" or avail.get(k))


def _percent(used: int, total: int) -> str:
    return f"{100 * used / total:.1f} %" if total else "-"


def render_markdown(report: dict) -> str:
    """The readable report: totals, resources, bandwidth, stages, then anything extra."""
    r = report
    cap = _cap(r)
    lines = [f"# {r['model']} on {r['board']} at {r['clock_mhz']:g} MHz", ""]
    if r.get("estimate_only"):
        lines += ["An estimate (`hwgen estimate`): the folding and figures a build with the same "
                  "options reports; no Verilog was written.", ""]

    lines += ["## Totals", ""]
    lines += _table(["metric", "value"], [
        ["cycles / frame", r["cycles_per_frame"]],
        ["frames / s", f"{r['fps']:,.1f}"],
        ["latency (cycles)", r["latency_cycles"]],
        ["latency (ms)", f"{_latency_ms(r):.3f}"],
        ["MAC efficiency η", f"{100 * r['mac_efficiency']:.1f} %"],
        ["fits on chip", r["fits_on_chip"]],
        ["partitions", r["partitions"]],
    ] + [[label, r[key]] for key, label in (("total_macs", "MACs / frame"),
                                             ("multipliers", "multipliers")) if key in r])

    used, avail = r["resources"]["used"], r["resources"]["available"]
    header = ["resource", "used", "available", "used %"]
    shown = shown_resources(r)
    rows = [[k, used[k], avail[k], _percent(used[k], avail[k])] for k in shown]
    if cap is not None:
        header.append(f"budget ({100 * cap:g} %)")
        for row, k in zip(rows, shown):
            row.append(_cell(math.floor(cap * avail[k])))
    lines += ["", "## Resources", ""] + _table(header, rows)

    bw = r["bandwidth"]
    rows = [["input", f"{bw['input_mbps']:,.1f}"], ["output", f"{bw['output_mbps']:,.1f}"],
            ["DDR", f"{bw['ddr_mbps']:,.1f}"]]
    if "board_ddr_mbps" in bw:
        rows.append(["board's DDR", f"{bw['board_ddr_mbps']:,.1f}"])
    lines += ["", "## Bandwidth", ""] + _table(["stream", "MB/s"], rows)
    limited = r.get("ddr_limited")
    if limited:
        which = (f"Partition {limited[0]} waits" if len(limited) == 1 else
                 f"Partitions {', '.join(map(str, limited))} wait")
        lines += ["", f"**{which} for DDR**: moving its input and output at the board's DDR "
                  "bandwidth takes longer than its compute; cycles / frame counts the DDR time."]

    worst = set(bottleneck_stages(r))
    depth = all("logic_depth" in s for s in r["stages"])
    rows = []
    for s in r["stages"]:
        row = [_cell(s["name"]), _cell(s["op"]), s["pe"], s["simd"], _cell(s["cycles_per_frame"]),
               s["dsp"], s["bram18"], s["lut"]]
        if s["name"] in worst:
            row[0], row[4] = f"**{row[0]}**", f"**{row[4]}**"
        if depth:
            row.append(s["logic_depth"])
        rows.append(row)
    lines += ["", "## Stages", "",
              "The bottleneck stage (most cycles per frame) is in **bold**."]
    timing = r.get("timing")
    if depth and timing:
        deeper = timing["deeper_stages"]
        lines += [f"Depth: LUT levels on the stage's longest path after yosys synthesis; "
                  f"{timing['clock_mhz']:g} MHz allows {timing['max_logic_levels']} "
                  f"({timing['rule']}): " + (f"{len(deeper)} stages are deeper."
                                              if deeper else "every stage is within it.")]
    lines.append("")
    lines += _table(["stage", "op", "PE", "SIMD", "cycles / frame", "DSP", "BRAM18", "LUT"]
                    + (["depth"] if depth else []), rows, right_from=2)

    lines += _partitions(r.get("partition_details"), shown_resources(r))
    lines += _reconfiguration(r)
    lines += _implementation(r)
    handled = set(REPORT_KEYS) | {"latency_ms", "total_macs", "multipliers", "utilization_cap",
                                  "partition_details", "implementation", "planned_fps", "timing",
                                  "estimate_only", "ddr_limited", "reconfiguration"}
    extras = {k: v for k, v in r.items() if k not in handled}
    if extras:
        lines += ["", "## Other fields", "", "```json",
                  json.dumps(extras, indent=2, default=_json_default), "```"]
    return "\n".join(lines) + "\n"


def _apart(model: float, measured: float) -> str:
    """``measured`` against ``model`` in percent, signed; "-" when the model is 0."""
    return f"{100 * (measured - model) / model:+.1f} %" if model else "-"


def _implementation(r: dict) -> list[str]:
    impl = r.get("implementation")
    if not impl:
        return []
    used = r["resources"]["used"]
    rows = [[k, used[k], impl[k], _apart(used[k], impl[k])] for k in shown_resources(r)]
    rows.append(["clock (MHz)", f"{impl['clock_mhz']:g}", f"{impl['fmax_mhz']:g} (Fmax)",
                 _apart(impl["clock_mhz"], impl["fmax_mhz"])])
    lines = ["", "## Implementation", "",
             f"{impl['tool']} ({impl['tool_version']}); bitstream `{impl['bitstream']}`. The "
             "implementation includes the board's shell (clocking, I/O, link), which the "
             "model leaves out.", ""]
    if impl["fmax_mhz"] < impl["clock_mhz"]:
        lines += [f"**TIMING NOT MET**: Fmax {impl['fmax_mhz']:g} MHz against "
                  f"{impl['clock_mhz']:g} MHz. At the achieved clock the design runs at "
                  f"{r['fps']:,.1f} frames/s (planned {r.get('planned_fps', r['fps']):,.1f}).",
                  ""]
    return lines + _table(["resource", "model", "implementation", "difference"], rows)


def reconfiguration_note(r: dict) -> str:
    """One clause on how a partitioned design's fps treats its bitstream loads ("" for one
    partition), for progress and summary lines."""
    rc = r.get("reconfiguration")
    if not isinstance(rc, dict):
        return ""
    if not rc.get("included"):
        return "; reconfiguration not included (bitstream length unknown)"
    batch = rc.get("batch", 1)
    return (f"; {r['partitions']} bitstream loads of {1e3 * rc['seconds_per_partition']:.2f} ms "
            f"per {'frame' if batch == 1 else f'batch of {batch}'} included, "
            f"{rc['fps_without_reconfiguration']:,.1f} fps without")


def _reconfiguration(r: dict) -> list[str]:
    """How loading the partitions' bitstreams enters frames / s."""
    rc = r.get("reconfiguration")
    if not isinstance(rc, dict):
        return []
    batch = rc.get("batch", 1)
    per = "frame" if batch == 1 else f"batch of {batch} frames"
    given = "" if rc.get("batch_given") else " (no --batch given)"
    if not rc.get("included"):
        return ["", f"**Reconfiguration not included**: no cited bitstream length for "
                f"{r['board']}'s device, so frames / s leaves out loading the {r['partitions']} "
                "partitions' bitstreams; it holds for large batches only.", ""]
    return ["", "## Reconfiguration", "",
            f"Each partition's bitstream ({rc['bitstream_bits']:,} bits) is loaded once per "
            f"{per}{given}, at the configuration port's {rc['config_gbps']:g} Gb/s: "
            f"{1e3 * rc['seconds_per_partition']:.2f} ms each at best, counted in frames / s "
            f"({r['fps']:,.1f}; {rc['fps_without_reconfiguration']:,.1f} without "
            "reconfiguration, as a batch large enough to hide it would run).", ""]


def _partitions(details, shown: tuple[str, ...]) -> list[str]:
    """A table of the partitions, if the compiler split the design; tolerant of missing keys."""
    if not isinstance(details, list) or not details:
        return []
    rows = []
    for i, p in enumerate(details):
        if not isinstance(p, dict):
            continue
        res = p.get("resources") if isinstance(p.get("resources"), dict) else {}
        stages = p.get("stages", [])
        names = ", ".join(map(str, stages)) if isinstance(stages, list) else str(stages)
        rows.append([_cell(p.get("index", i)), _cell(names)]
                    + [_cell(res.get(k, "-")) for k in shown]
                    + [_cell(p.get("ddr_bytes_per_frame", "-")), _cell(p.get("ddr_mbps", "-"))])
    return ["", "## Partitions", ""] + _table(
        ["#", "stages", *(k.upper() for k in shown), "DDR bytes / frame", "DDR MB/s"], rows,
        right_from=2)


# Plots use the Agg canvas directly rather than pyplot, so rendering a report never switches the
# backend of whoever imported us. Agg with fixed dpi, fixed size and no "Software" text chunk
# writes byte-identical PNGs for the same report on the same matplotlib and FreeType versions;
# across versions, glyph rendering can differ, so only report.json and report.md are promised
# stable everywhere.
_DPI = 100
_PLAIN, _HOT, _OVER = "#4c72b0", "#c44e52", "#dd8452"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, format="png", metadata={"Software": None})


def plot_stage_cycles(report: dict, path: Path) -> None:
    """Bar per stage of cycles per frame, bottleneck highlighted, line at the pipeline's rate."""
    stages = report["stages"]
    worst = set(bottleneck_stages(report))
    # Grow with the stage count so a 60-stage MobileNet stays legible.
    fig = _figure(8.0, max(3.0, 1.2 + 0.28 * len(stages)))
    ax = fig.add_subplot()
    ys = range(len(stages))
    ax.barh(ys, [s["cycles_per_frame"] for s in stages],
            color=[_HOT if s["name"] in worst else _PLAIN for s in stages])
    ax.set_yticks(list(ys), [s["name"] for s in stages], fontsize=8)
    ax.set_ylim(len(stages) - 0.5, -0.5)  # first stage on top, as data flows
    ax.axvline(report["cycles_per_frame"], color="black", linestyle="--", linewidth=1,
               label=f"pipeline: {report['cycles_per_frame']:,} cycles / frame")
    ax.set_xlabel("cycles / frame")
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"{report['model']} on {report['board']}: cycles per frame by stage")
    # Outside the axes, so it never hides a bar.
    fig.legend(loc="outside lower center", fontsize=8)
    _save(fig, path)


def plot_resources(report: dict, path: Path) -> None:
    """Used resources as a percent of available, with lines at 100 % and the utilization cap."""
    used, avail = report["resources"]["used"], report["resources"]["available"]
    cap = _cap(report)
    shown = shown_resources(report)
    percents = [100 * used[k] / avail[k] if avail[k] else 0.0 for k in shown]
    limit = 100 * cap if cap is not None else 100.0
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    xs = range(len(shown))
    ax.bar(xs, percents, color=[_OVER if p > limit else _PLAIN for p in percents])
    for x, p, k in zip(xs, percents, shown):
        ax.annotate(f"{p:.1f} %\n{used[k]:,} / {avail[k]:,}", (x, p), ha="center",
                    va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(list(xs), [k.upper() for k in shown])
    ax.axhline(100, color="black", linewidth=1, label="available")
    if cap is not None:
        ax.axhline(100 * cap, color=_HOT, linestyle="--", linewidth=1,
                   label=f"utilization cap ({100 * cap:g} %)")
    # Headroom above the tallest bar for its two-line label.
    ax.set_ylim(0, max(125.0, 1.25 * max(percents)))
    ax.set_ylabel("% of device")
    ax.set_title(f"{report['model']} on {report['board']}: resources")
    fig.legend(loc="outside lower center", fontsize=8, ncols=2)
    _save(fig, path)


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """Validate ``report`` and write it to ``out_dir`` (created if needed).

    Returns
    -------
    list of Path
        ``report.json``, ``report.md``, ``stage_cycles.png``, ``resources.png``, in that order.

    Raises
    ------
    ValueError
        The report does not match the schema (see :func:`validate_report`), or an extra key
        holds NaN or infinity, which JSON cannot carry.
    """
    validate_report(report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / n for n in ("report.json", "report.md", "stage_cycles.png",
                                   "resources.png")]
    text = json.dumps(_schema_ordered(report), indent=2, sort_keys=False, allow_nan=False,
                      default=_json_default, ensure_ascii=False)
    # newline="\n" so the bytes do not depend on the platform writing them.
    paths[0].write_text(text + "\n", encoding="utf-8", newline="\n")
    paths[1].write_text(render_markdown(report), encoding="utf-8", newline="\n")
    plot_stage_cycles(report, paths[2])
    plot_resources(report, paths[3])
    return paths
