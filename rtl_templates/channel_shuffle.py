"""ChannelShuffle: ShuffleNet's per-pixel channel permutation on a beat stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Module, Signal
from amaranth.lib.wiring import In, Out

from dataflows import tensor_ops

from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources

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

    Two banks of ``channels`` registers alternate: the input fills one bank with a pixel's
    ``C / simd`` beats while the output reads the other, so both sides move one beat per cycle.
    Output lane ``k`` of beat ``t`` is a constant register (``source(t * simd + k)``) of the
    read bank, so the read side is a ``2 * C / simd``-way multiplexer per output bit. A bank
    turns readable in the cycle after its last write, so the latency is one pixel:
    ``C / simd`` cycles. ``valid``/``ready`` come from registered full flags; no combinational
    path links the input and output handshakes.

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
        banks = [[Signal.like(self.i.payload[0], name=f"bank{b}_c{c}") for c in range(p.channels)]
                 for b in range(2)]
        full = Array(Signal(name=f"full{b}") for b in range(2))
        w_bank, r_bank = Signal(), Signal()
        w_beat, r_beat = Signal(range(beats)), Signal(range(beats))

        # Write side: beat w_beat lands in channels w_beat*simd ... of bank w_bank.
        m.d.comb += self.i.ready.eq(~full[w_bank])
        with m.If(self.i.valid & self.i.ready):
            for b in range(2):
                for t in range(beats):
                    with m.If((w_bank == b) & (w_beat == t)):
                        m.d.sync += [banks[b][t * p.simd + k].eq(self.i.payload[k])
                                     for k in range(p.simd)]
            with m.If(w_beat == beats - 1):
                m.d.sync += [w_beat.eq(0), w_bank.eq(~w_bank), full[w_bank].eq(1)]
            with m.Else():
                m.d.sync += w_beat.eq(w_beat + 1)

        # Read side: a fixed permutation per (bank, beat), chosen by a multiplexer.
        m.d.comb += self.o.valid.eq(full[r_bank])
        for k in range(p.simd):
            choices = Array(banks[b][p.source(t * p.simd + k)]
                            for b in range(2) for t in range(beats))
            m.d.comb += self.o.payload[k].eq(choices[r_bank * beats + r_beat])
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
        # FF: two banks of C values plus two beat counters, two bank bits, two full flags.
        # LUT: per output bit a (2 * C / simd):1 mux, ceil(n / 4) LUT6 (a LUT6 is a 4:1 mux);
        # write enables, one LUT per (bank, beat); a few for the handshakes.
        p = self.params
        beats = p.pixel_beats
        cbits = max(1, (beats - 1).bit_length())
        mux = p.bits * p.simd * -(-2 * beats // 4)
        return Resources(lut=mux + 2 * beats + 2 * cbits + 4,
                         ff=2 * p.channels * p.bits + 2 * cbits + 4)
