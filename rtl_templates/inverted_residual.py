"""InvertedResidual: a MobileNet V2 block (V3 without SE) from the primitive PEs.

Composition (every arrow a stream of docs/streams.md)::

    i -> [Fork -o0->] expand MVU (1x1, ReLU6) -> SlidingWindow (K3, CHANNEL_MAJOR, stride s)
         -> DepthwiseUnit (ReLU6) -> project MVU (1x1, linear) [-a-> Add -> o]
         [    \\-o1-> skip Fifo ----------------------------------------b-/   ]

The bracketed residual path exists when ``stride == 1`` and ``Cin == Cout``. Lanes line up
without width converters: the window and the depthwise unit run at the expand's ``pe`` lanes,
the projection reads them (``project.simd == depthwise.pe``), and its ``pe`` equals the input
beat width so the Add sees beats of one layout on both inputs.

The skip FIFO: the Add takes a beat only when both inputs have one, and the Fork moves an input
beat only when both the expand and the skip path take it. Before the first output pixel of a
row exists, the line buffer must receive every row that pixel's window reads, and each of those
input pixels also enters the skip path, so the FIFO holds
:func:`~rtl_templates.fire_module.bypass_pixels` pixels (those rows, plus the main path's
pipeline lag in pixels, plus one) of ``Cin / simd`` beats each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .beats import WindowOrder, beats_to_frame, frame_to_beats
from .depthwise_unit import DepthwiseParams, DepthwiseUnit
from .elementwise import Add, AddParams
from .fifo import Fifo, FifoParams
from .fire_module import bypass_pixels, conv_params
from .matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit, check_int
from .pe import ProcessingElement, beat_signature
from .plumbing import Fork, ForkParams
from .resources import DeviceFamily, Resources
from .sliding_window import SlidingWindow, SlidingWindowParams

__all__ = ["InvertedResidualParams", "InvertedResidual"]


@dataclass(frozen=True, eq=False)
class InvertedResidualParams:
    """Shape, constants and folding of an :class:`InvertedResidual`.

    Attributes
    ----------
    height, width : int
        Input frame size.
    stride : int
        Depthwise stride, 1 or 2.
    padding : int
        Depthwise padding on every side (1 for a 3x3 "same" convolution).
    expand : MatrixVectorParams
        1x1 conv ``Cin -> hidden`` (ReLU6 in its requant bounds); ``pixels = height * width``.
    depthwise : DepthwiseParams
        3x3 depthwise conv over ``hidden`` channels; ``pe == expand.pe``, ``pixels`` the
        output pixels.
    project : MatrixVectorParams
        1x1 conv ``hidden -> Cout``, linear; ``simd == depthwise.pe``, ``pixels`` the output
        pixels.
    add : AddParams or None
        The residual add (``a`` the projection, ``b`` the block input), only for
        ``stride == 1`` and ``Cin == Cout``; ``simd == project.pe == expand.simd``.

    Raises
    ------
    ValueError, TypeError
        On an inconsistent value; the message quotes it.
    """

    height: int
    width: int
    stride: int
    expand: MatrixVectorParams
    depthwise: DepthwiseParams
    project: MatrixVectorParams
    add: AddParams | None = None
    padding: int = 1

    def __post_init__(self):
        check_int(self.height, "height")
        check_int(self.width, "width")
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"stride must be 1 or 2, not {self.stride!r}")
        for name, kind in (("expand", MatrixVectorParams), ("depthwise", DepthwiseParams),
                           ("project", MatrixVectorParams)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be {kind.__name__}, not {getattr(self, name)!r}")
        if self.add is not None and not isinstance(self.add, AddParams):
            raise TypeError(f"add must be AddParams or None, not {self.add!r}")
        if self.add is not None and self.stride != 1:
            raise ValueError(f"a residual add needs stride 1, not stride {self.stride!r}")
        ex, dw, pr = self.expand, self.depthwise, self.project
        window = self.window_params()   # validates kernel, padding and frame size
        if dw.kernel != 3:
            raise ValueError(f"depthwise kernel must be 3, not {dw.kernel!r}")
        if ex.pixels != self.height * self.width:
            raise ValueError(f"expand.pixels must be {self.height * self.width}, not {ex.pixels!r}")
        out_pixels = window.out_height * window.out_width
        for name, p in (("depthwise", dw), ("project", pr)):
            if p.pixels != out_pixels:
                raise ValueError(f"{name}.pixels must be the {out_pixels} output pixels, "
                                 f"not {p.pixels!r}")
        if dw.channels != ex.cout or dw.pe != ex.pe:
            raise ValueError(f"depthwise (C={dw.channels!r}, pe={dw.pe!r}) must match expand's "
                             f"output (C={ex.cout}, pe={ex.pe})")
        if pr.taps != dw.channels or pr.simd != dw.pe:
            raise ValueError(f"project (taps={pr.taps!r}, simd={pr.simd!r}) must read the "
                             f"depthwise output (C={dw.channels}, pe={dw.pe})")
        bits = {ex.out_bits, dw.in_bits, dw.out_bits, pr.in_bits}
        if len(bits) != 1:
            raise ValueError(f"activation widths disagree between the units: {sorted(bits)!r}")
        if self.add is not None:
            if ex.taps != pr.cout:
                raise ValueError(f"a residual add needs Cin == Cout, not {ex.taps!r} -> "
                                 f"{pr.cout!r}")
            if not self.add.simd == pr.pe == ex.simd:
                raise ValueError(f"add simd {self.add.simd!r}, project pe {pr.pe!r} and expand "
                                 f"simd {ex.simd!r} must be equal")
            if self.add.bits != pr.out_bits or ex.in_bits != pr.out_bits:
                raise ValueError(f"add bits {self.add.bits!r} must equal the input and "
                                 f"projection bits {ex.in_bits!r}/{pr.out_bits!r}")

    def window_params(self) -> SlidingWindowParams:
        ex = self.expand
        return SlidingWindowParams(bits=ex.out_bits, channels=ex.cout, height=self.height,
                                   width=self.width, kernel=3, stride=self.stride,
                                   padding=self.padding, simd=ex.pe,
                                   order=WindowOrder.CHANNEL_MAJOR)

    @property
    def residual(self) -> bool:
        return self.add is not None

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.expand.taps)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        w = self.window_params()
        return (w.out_height, w.out_width, self.project.cout)

    @classmethod
    def from_quantized(cls, qmodel, *, expand_pe: int, expand_simd: int, project_pe: int,
                       expand: str = "expand", depthwise: str = "depthwise",
                       project: str = "project", add: str | None = None
                       ) -> "InvertedResidualParams":
        """Params of the block with nodes ``expand``, ``depthwise``, ``project`` (and the
        residual ``add``) in a :class:`~dataflows.quantize.QuantizedModel`.

        The depthwise unit and the projection's ``simd`` take ``expand_pe``. The add's
        multipliers follow its input order: ``a`` of the PE is always the projection.
        """
        model = qmodel.model
        h, w, _ = model.input_shapes(expand)[0]
        bits, wbits = qmodel.config.abits, qmodel.config.wbits
        layer = model.layer(depthwise)
        pads = set(layer.padding)
        if len(pads) != 1 or layer.kernel != (3, 3) or len(set(layer.stride)) != 1:
            raise ValueError(f"depthwise {depthwise!r} must be a square 3x3 with equal padding "
                             f"and stride, not {layer!r}")
        out = model.out_shape(depthwise)
        q_dw = qmodel.params[depthwise]
        dw = DepthwiseParams(in_bits=bits, out_bits=bits,
                             weights=np.asarray(q_dw.weight).reshape(q_dw.weight.shape[0], -1),
                             bias=q_dw.bias, requant=q_dw.requant, wbits=wbits,
                             acc_bits=q_dw.acc_bits, kernel=3, pe=expand_pe,
                             pixels=out.h * out.w)
        ex = conv_params(qmodel.params[expand], bits=bits, wbits=wbits, pe=expand_pe,
                         simd=expand_simd, pixels=h * w)
        pr = conv_params(qmodel.params[project], bits=bits, wbits=wbits, pe=project_pe,
                         simd=expand_pe, pixels=out.h * out.w)
        add_params = None
        if add is not None:
            q = qmodel.params[add]
            ma, mb = q.multiplier_a, q.multiplier_b
            if model.inputs_of(add)[0] != project:
                ma, mb = mb, ma
            add_params = AddParams(bits=bits, simd=project_pe, multiplier_a=ma, multiplier_b=mb,
                                   shift=q.shift, lo=q.lo, hi=q.hi,
                                   frame_beats=out.h * out.w * pr.cout // project_pe)
        return cls(height=h, width=w, stride=layer.stride[0], padding=layer.padding[0],
                   expand=ex, depthwise=dw, project=pr, add=add_params)


class InvertedResidual(ProcessingElement):
    """An inverted residual block (see the module docstring).

    Parameters
    ----------
    params : InvertedResidualParams

    Attributes
    ----------
    i : In(stream of ``expand.simd`` lanes)
    o : Out(stream of ``project.pe`` lanes)
    expand, window, depthwise, project : ProcessingElement
    fork, skip, add : ProcessingElement or None
        The residual path's units (``None`` without one).
    skip_depth : int
        Beats of the skip FIFO (0 without a residual).
    """

    def __init__(self, params: InvertedResidualParams):
        if not isinstance(params, InvertedResidualParams):
            raise TypeError(f"params must be InvertedResidualParams, not {params!r}")
        self.params = p = params
        ex, pr = p.expand, p.project
        self.expand = MatrixVectorUnit(ex)
        self.window = SlidingWindow(p.window_params())
        self.depthwise = DepthwiseUnit(p.depthwise)
        self.project = MatrixVectorUnit(pr)
        self.fork = self.skip = self.add = None
        self.skip_depth = 0
        if p.residual:
            self.fork = Fork(ForkParams(bits=ex.in_bits, simd=ex.simd, channels=ex.taps,
                                        pixels=ex.pixels))
            self.add = Add(p.add)
            tail = self.main_latency() - self.window.latency()
            self.skip_depth = max(2, ex.steps * bypass_pixels(
                self.window.params, tail, self.cycles_per_frame() / pr.pixels))
            self.skip = Fifo(FifoParams(bits=ex.in_bits, lanes=ex.simd, depth=self.skip_depth,
                                        frame_beats=ex.pixels * ex.steps))
        super().__init__({"i": In(beat_signature(ex.in_bits, ex.simd)),
                          "o": Out(beat_signature(pr.out_bits, pr.pe))})

    def units(self) -> dict[str, ProcessingElement]:
        names = ("fork", "expand", "window", "depthwise", "project", "skip", "add")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units().items():
            m.submodules[name] = unit
        if self.params.residual:
            wiring.connect(m, wiring.flipped(self.i), self.fork.i)
            wiring.connect(m, self.fork.o0, self.expand.i)
            wiring.connect(m, self.fork.o1, self.skip.i)
        else:
            wiring.connect(m, wiring.flipped(self.i), self.expand.i)
        wiring.connect(m, self.expand.o, self.window.i)
        wiring.connect(m, self.window.o, self.depthwise.i)
        wiring.connect(m, self.depthwise.o, self.project.i)
        if self.params.residual:
            wiring.connect(m, self.project.o, self.add.a)
            wiring.connect(m, self.skip.o, self.add.b)
            wiring.connect(m, self.add.o, wiring.flipped(self.o))
        else:
            wiring.connect(m, self.project.o, wiring.flipped(self.o))
        return m

    # -- models -------------------------------------------------------------------------------
    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        """One input frame to the output frame, composed of the sub-PEs' behaviour models."""
        p = self.params
        frame = np.asarray(frame, dtype=np.int64)
        if frame.shape != p.in_shape:
            raise ValueError(f"frame shape must be {p.in_shape}, not {frame.shape!r}")
        hidden = beats_to_frame(self.expand.behaviour(frame_to_beats(frame, p.expand.simd)),
                                (p.height, p.width, p.expand.cout))
        dw = self.depthwise.behaviour(self.window.behaviour(hidden))
        out = beats_to_frame(self.project.behaviour(dw.reshape(-1, p.project.simd)), p.out_shape)
        if p.residual:
            out = self.add.behaviour(out, frame)
        return out

    def cycles_per_frame(self) -> int:
        """The slowest sub-unit sets the pace (the skip FIFO keeps the fork moving)."""
        units = [self.expand, self.window, self.depthwise, self.project]
        if self.params.residual:
            units += [self.fork, self.add]
        return max(u.cycles_per_frame() for u in units)

    def main_latency(self) -> int:
        """First input to the projection's first output, on an empty block.

        With the input at one beat per cycle the expand emits its ``k``-th beat at
        ``expand.latency() + k * expand.steps``; the window emits after the last beat of the
        ``rows_needed(0)`` rows its first window reads as many cycles as its own latency model
        has after its last needed beat, then one beat per cycle; the
        depthwise unit emits a beat every ``K*K`` cycles from ``depthwise.latency()`` on; the
        projection's first group reads ``project.steps`` of those beats, then its pipeline.
        """
        p, ex = self.params, self.params.expand
        w = self.window.params
        last = w.rows_needed(0) * w.width * w.groups - 1
        t_window = self.expand.latency() + last * ex.steps + (self.window.latency() - last)
        t_dw = t_window + self.depthwise.latency()
        return t_dw + (p.project.steps - 1) * p.depthwise.taps + self.project.pipeline

    def latency(self) -> int:
        """:meth:`main_latency`, plus the Add's 2 cycles with a residual (its skip beat waits
        in the FIFO long before)."""
        return self.main_latency() + (self.add.latency() if self.params.residual else 0)

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The sum of the sub-PEs' resources (the composite adds only wires)."""
        total = Resources()
        for unit in self.units().values():
            total = total + unit.resources(family)
        return total
