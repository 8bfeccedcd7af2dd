"""Energy of one multiply-accumulate as a function of its operand bitwidths."""

from __future__ import annotations

from dataclasses import dataclass

from ._check import check_name, check_number, check_positive_int

__all__ = ["MacCost"]


@dataclass(frozen=True, slots=True)
class MacCost:
    """One MAC = one multiply + one add, priced at a reference bitwidth and scaled by power laws.

    For weight bits ``w`` and activation bits ``a`` (``ref`` = ``ref_bits``)::

        energy(w, a) = mult * (w/ref)**mult_exponent * (a/ref)**mult_exponent
                     + add  * (max(w, a)/ref)**add_exponent

    With the default exponents (1, 1) the multiplier scales linearly when one operand
    shrinks and quadratically when both do, and the adder linearly (Horowitz, ISSCC
    2014; Sze et al. 2017). Units are the owning hardware's (pJ or MAC-normalized).
    Example: ``MacCost("fp32", 32, mult=3.7, add=0.9).energy(32, 32) == 4.6``; at
    ``energy(16, 16)`` it is ``3.7/4 + 0.9/2 = 1.375``.

    NB: the adder is priced at the wider operand, not at the accumulator width.
    """

    name: str
    ref_bits: int
    mult: float
    add: float
    mult_exponent: float = 1.0
    add_exponent: float = 1.0

    def __post_init__(self) -> None:
        check_name("MacCost", "name", self.name)
        owner = f"MacCost {self.name!r}"
        check_positive_int(owner, "ref_bits", self.ref_bits)
        for field in ("mult", "add", "mult_exponent", "add_exponent"):
            object.__setattr__(self, field, check_number(owner, field, getattr(self, field)))

    @property
    def reference_energy(self) -> float:
        """Energy of one MAC at the reference bitwidth (``mult + add``)."""
        return self.mult + self.add

    def energy(self, w_bits: float, a_bits: float) -> float:
        """Energy of one MAC with ``w_bits``-bit weights and ``a_bits``-bit activations (hardware unit)."""
        ref = self.ref_bits
        mult = self.mult * ((w_bits / ref) * (a_bits / ref)) ** self.mult_exponent if self.mult else 0.0
        return mult + self.op_energy(max(w_bits, a_bits))

    def op_energy(self, bits: float) -> float:
        """Energy of one non-MAC operation (an add or a comparison) on ``bits``-bit operands: the adder term."""
        return self.add * (bits / self.ref_bits) ** self.add_exponent if self.add else 0.0
