"""ChannelShuffle: ShuffleNet's per-pixel channel permutation on a beat stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from dataflows import tensor_ops

from .address import scaled
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, lutram_luts

__all__ = ["ChannelShuffleParams", "ChannelShuffle"]


@dataclass(frozen=True)
class ChannelShuffleParams:
    """Shape of a :class:`ChannelShuffle`.

    Attributes
    ----------
    bits, simd : int
        Beat layout of both streams.
    channels : int
        Channels per pixel. Must be a multiple of ``groups`` (the shuffle's definition) and of
        ``simd`` (a pixel is whole beats). Nothing else: the buffer is registers, so an output
        beat may gather its lanes from anywhere in the pixel, and ``simd`` need not divide
        ``channels / groups`` nor ``groups``.
    groups : int
        Shuffle groups.
    pixels : int
        Pixels per frame, for the cycle model.
    """

    bits: int
    simd: int
    channels: int
    groups: int
    pixels: int

    def __post_init__(self):
        for name in ("bits", "simd", "channels", "groups", "pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if self.channels % self.simd:
            raise ValueError(f"channels={self.channels!r} is not a multiple of simd={self.simd!r}")
        if self.channels % self.groups:
            raise ValueError(
                f"channels={self.channels!r} is not a multiple of groups={self.groups!r}")

    @property
    def pixel_beats(self) -> int:
        return self.channels // self.simd

    def source(self, channel: int) -> int:
        """The input channel that output ``channel`` carries.

        Output ``j = a * groups + g`` is input ``g * (channels / groups) + a``: the transpose
        of the (groups, channels / groups) view.
        """
        per_group = self.channels // self.groups
        return (channel % self.groups) * per_group + channel // self.groups


class ChannelShuffle(ProcessingElement):
    """Permute the channels of every pixel as view (groups, C/groups), transpose, flatten.

    A memory of two banks of ``channels`` entries alternates: the input fills one bank with a
    pixel's ``C / simd`` beats (``simd`` write ports, lane ``j`` of beat ``t`` at entry
    ``t * simd + j``) while the output reads the other (``simd`` asynchronous read ports, lane
    ``k`` of beat ``t`` at entry ``source(t * simd + k)``), so both sides move one beat per
    cycle. With ``simd == 1`` this is one LUT RAM; wider, the tools build it from registers
    and read multiplexers. A bank turns readable in the cycle after its last write, so the
    latency is one pixel: ``C / simd`` cycles. ``valid``/``ready`` come from registered full
    flags; no combinational path links the input and output handshakes.

    Parameters
    ----------
    params : ChannelShuffleParams
    """

    def __init__(self, params: ChannelShuffleParams):
        if not isinstance(params, ChannelShuffleParams):
            raise TypeError(f"params must be ChannelShuffleParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        beats = p.pixel_beats
        full = Array(Signal(name=f"full{b}") for b in range(2))
        w_bank, r_bank = Signal(), Signal()
        w_beat, r_beat = Signal(range(beats)), Signal(range(beats))
        pixel = memory.Memory(shape=self.i.payload[0].shape(), depth=2 * p.channels, init=[])
        m.submodules.pixel = pixel

        # Write side: lane j of beat w_beat lands in entry w_beat*simd + j of bank w_bank.
        m.d.comb += self.i.ready.eq(~full[w_bank])
        take = self.i.valid & self.i.ready
        for j in range(p.simd):
            port = pixel.write_port()
            m.d.comb += [port.addr.eq(w_bank * p.channels + scaled(w_beat, p.simd) + j),
                         port.data.eq(self.i.payload[j]), port.en.eq(take)]
        with m.If(take):
            with m.If(w_beat == beats - 1):
                m.d.sync += [w_beat.eq(0), w_bank.eq(~w_bank), full[w_bank].eq(1)]
            with m.Else():
                m.d.sync += w_beat.eq(w_beat + 1)

        # Read side: lane k of beat r_beat is entry source(r_beat*simd + k) of bank r_bank.
        m.d.comb += self.o.valid.eq(full[r_bank])
        for k in range(p.simd):
            port = pixel.read_port(domain="comb")
            sources = Array(Const(p.source(t * p.simd + k), range(p.channels))
                            for t in range(beats))
            m.d.comb += [port.addr.eq(r_bank * p.channels + sources[r_beat]),
                         self.o.payload[k].eq(port.data)]
        with m.If(self.o.valid & self.o.ready):
            with m.If(r_beat == beats - 1):
                m.d.sync += [r_beat.eq(0), r_bank.eq(~r_bank), full[r_bank].eq(0)]
            with m.Else():
                m.d.sync += r_beat.eq(r_beat + 1)
        return m

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        return tensor_ops.channel_shuffle(np.asarray(frame, dtype=np.int64), self.params.groups)

    def cycles_per_frame(self) -> int:
        return self.params.pixels * self.params.pixel_beats

    def latency(self) -> int:
        return self.params.pixel_beats  # a whole pixel is written before its first read

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        # simd == 1: the two banks are one LUT RAM of 2C entries (one write port, one read).
        # Wider: several write ports, so registers (2C values) with a write enable per entry,
        # and per output bit a (2C)-way read mux, ceil(2C / 4) LUT6 (a LUT6 is a 4:1 mux).
        # Both: two beat counters, two bank bits, two full flags, a few handshake LUTs.
        p = self.params
        beats = p.pixel_beats
        cbits = max(1, (beats - 1).bit_length())
        control = Resources(lut=2 * cbits + 4, ff=2 * cbits + 4)
        if p.simd == 1:
            return control + Resources(lut=lutram_luts(p.bits, 2 * p.channels, family))
        mux = p.bits * p.simd * -(-2 * p.channels // 4)
        return control + Resources(lut=mux + 2 * beats, ff=2 * p.channels * p.bits)
