"""Every zoo model at full resolution on the four large boards, in estimate mode (``hwgen
estimate``: the build's folding and report, no Verilog): partitions, fps at the board clock,
MAC efficiency η, DSP, BRAM18 and URAM use, DDR bandwidth, and the seconds each estimate took; the
Vitis AI DPU's published figures beside ours (../shared/facts.md: Vitis AI 2.5 model zoo,
2 x B4096 at 300 MHz on the ZCU104, 3 x B4096 at 281 MHz on the ZCU102).

A partitioned design's "fps" is per frame with each partition's bitstream loaded once a frame
(batch 1), where the board's bitstream length is cited (vc707, pynq-z2); "fps, large batch"
adds only the partitions' cycles, as a batch long enough to hide reconfiguration runs. The
UltraScale+ boards have no cited bitstream length, so only the large-batch figure is known
there. A design that does not fit says why. A design that fits one bitstream only by streaming
weights from DDR (``--ddr-weights auto``, the default) is also estimated partitioned with every
weight on chip (``--ddr-weights off``), and both figures are printed.

Run: .venv/bin/python bench/zoo_boards.py [--boards zcu104,u250] [--models squeezenet1_1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dataflows.zoo import MODELS
from hwgen.build import BuildOptions
from hwgen.compile import DdrWeights, FitError
from hwgen.estimate import estimate

BOARDS = ("zcu104", "zcu102", "vc707", "u250")

#: Published DPU frame rates (fps), by (model, board).
DPU = {("squeezenet1_1", "zcu104"): 1315.9, ("squeezenet1_1", "zcu102"): 1499.6,
       ("mobilenet_v1", "zcu104"): 784.0, ("mobilenet_v2", "zcu104"): 609.2,
       ("mobilenet_v3_small", "zcu104"): 819.6, ("efficientnet_b0", "zcu104"): 146.3}


def estimated(model: str, board: str, out: Path,
              ddr: DdrWeights = DdrWeights.AUTO) -> tuple[dict | None, str, float]:
    """The report (None if the design does not fit), why not, and the seconds taken."""
    start = time.perf_counter()
    try:
        r = estimate(BuildOptions(model=model, board=board, out_dir=out, ddr_weights=ddr)).report
        why = ""
    except FitError as exc:
        r, why = None, str(exc)
    return r, why, time.perf_counter() - start


def row(model: str, board: str, r: dict | None, why: str, seconds: float) -> list[str]:
    anchor = DPU.get((model, board))
    dpu = f"{anchor:,.1f}" if anchor else ""
    if r is None:
        return [model, board, "-", f"does not fit: {why}", "", "", "", "", "", "", dpu,
                f"{seconds:.1f}"]
    used, avail = r["resources"]["used"], r["resources"]["available"]
    return [model, board, str(r["partitions"]), _batch1(r), f"{_steady(r):,.1f}",
            f"{r['mac_efficiency']:.3f}",
            f"{used['dsp']:,}/{avail['dsp']:,}", f"{used['bram18']:,}/{avail['bram18']:,}",
            f"{used['uram']:,}/{avail['uram']:,}" if avail["uram"] else "-",
            f"{r['bandwidth']['ddr_mbps']:,.0f}", dpu, f"{seconds:.1f}"]


def _steady(r: dict) -> float:
    """fps with reconfiguration hidden by a large batch (a one-partition design's fps)."""
    rc = r.get("reconfiguration")
    return rc["fps_without_reconfiguration"] if rc else r["fps"]


def _batch1(r: dict) -> str:
    """fps of one frame at a time, reconfiguration included; "?" where it is not known."""
    rc = r.get("reconfiguration")
    return "?" if rc and not rc["included"] else f"{r['fps']:,.1f}"


def _ours(r: dict | None) -> str:
    if r is None:
        return "no fit"
    if r["partitions"] == 1:
        streamed = " (DDR weights)" if r["bandwidth"].get("ddr_weight_bytes_per_frame") else ""
        return f"{r['fps']:,.0f}{streamed}"
    one = _batch1(r)
    return (f"{_steady(r):,.0f} ({r['partitions']} parts"
            + ("" if one == "?" else f"; {r['fps']:,.0f} at batch 1") + ")")


def fps_cell(model: str, board: str, r: dict | None, on_chip: tuple | None = None) -> str:
    """``"574"``, ``"355 (5 parts)"``, ``"78 (DDR weights); 355 (5 parts)"``, ``"no fit"``:
    the large-batch figure, with a partitioned design's one-frame-at-a-time figure where it is
    known, and after a semicolon the design with every weight on chip where that differs;
    the DPU's after a slash."""
    anchor = DPU.get((model, board))
    ours = _ours(r) + ("" if on_chip is None else f"; {_ours(on_chip[0])}")
    return ours + (f" / DPU {anchor:,.0f}" if anchor else "")


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default=",".join(BOARDS))
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    models, boards = args.models.split(","), args.boards.split(",")
    results, on_chip = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for board in boards:
                out = Path(tmp) / f"{model}-{board}"
                results[model, board] = r = estimated(model, board, out)
                if r[0] is not None and r[0]["bandwidth"].get("ddr_weight_bytes_per_frame"):
                    on_chip[model, board] = estimated(model, board, out, DdrWeights.OFF)
    table(["model", "board", "partitions", "fps", "fps, large batch", "η", "DSP", "BRAM18",
           "URAM", "DDR MB/s", "DPU fps", "estimate s"],
          [row(m, b, *results[m, b]) for m in models for b in boards]
          + [row(f"{m} (weights on chip)", b, *on_chip[m, b]) for m, b in on_chip])
    print("\nfps at the board clock, large batch (partitions back to back; a partitioned "
          "design's one-frame-at-a-time figure, each bitstream loaded once a frame, where the "
          "board's bitstream length is cited)\n")
    table(["model", *boards],
          [[m, *(fps_cell(m, b, results[m, b][0], on_chip.get((m, b))) for b in boards)]
           for m in models])
    seconds = [t for _, _, t in [*results.values(), *on_chip.values()]]
    print(f"\n{len(seconds)} estimates in {sum(seconds):.0f} s, "
          f"{min(seconds):.1f} to {max(seconds):.1f} s each")


if __name__ == "__main__":
    main()
