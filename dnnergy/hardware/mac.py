"""Energy of one multiply-accumulate as a function of its operand bitwidths."""

from __future__ import annotations

from dataclasses import dataclass

from ._check import MAX_BITS, MAX_EXPONENT, check_name, check_number, check_positive_int

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
    ``energy(16, 16)`` it is ``3.7/4 + 0.9/2 = 1.375``. For that cost ``.reference_energy`` is 4.6 pJ
    (``mult + add``), ``.op_energy(16)`` (a 16-bit add or comparison) is ``0.9/2 = 0.45`` pJ and
    ``.binary_energy()`` is ``3.7/1024 + 0.9 * 2/32 = 0.0599`` pJ.

    NB: the adder is priced at the wider operand, not at the accumulator width.

    **Binary MAC** (1-bit weights and 1-bit activations, BNN / XNOR-Net): the product of
    two values in {-1, +1} is one XNOR gate and the sum a popcount, not a multiplier and
    an adder (Rastegari et al. 2016; Hubara et al. 2016)::

        energy(1, 1) = mult * (1/ref)**(2 * mult_exponent) + add * (2/ref)**add_exponent

    the XNOR priced as the multiplier's 1 x 1-bit product (one gate, like an AND) and
    the popcount as a 2-bit add per product: a popcount tree over ``n`` one-bit inputs
    has ``sum_k k * n / 2**k -> 2n`` full-adder bits. Example: eyeriss' int16 MAC
    (0.935 + 0.065) costs ``0.935/256 + 0.065 * 2/16 = 0.0118`` per binary MAC.
    NB: the running sum of popcounts (one wide add per ``n`` products) is not counted.
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
        check_positive_int(owner, "ref_bits", self.ref_bits, maximum=MAX_BITS)
        for field in ("mult", "add"):
            object.__setattr__(self, field, check_number(owner, field, getattr(self, field)))
        for field in ("mult_exponent", "add_exponent"):
            object.__setattr__(self, field, check_number(owner, field, getattr(self, field), maximum=MAX_EXPONENT))

    @property
    def reference_energy(self) -> float:
        """Energy of one MAC at the reference bitwidth (``mult + add``), in the hardware's unit (pJ or MAC-normalized)."""
        return self.mult + self.add

    def energy(self, w_bits: float, a_bits: float) -> float:
        """Energy of one MAC with ``w_bits``-bit weights and ``a_bits``-bit activations (hardware unit)."""
        ref = self.ref_bits
        if w_bits <= 1 and a_bits <= 1:
            return self.binary_energy()
        mult = self.mult * ((w_bits / ref) * (a_bits / ref)) ** self.mult_exponent if self.mult else 0.0
        return mult + self.op_energy(max(w_bits, a_bits))

    def binary_energy(self) -> float:
        """Energy of one binary MAC, an XNOR and its share of a popcount (see the class docstring)."""
        xnor = self.mult * (1.0 / self.ref_bits) ** (2 * self.mult_exponent) if self.mult else 0.0
        return xnor + self.op_energy(2)

    def op_energy(self, bits: float) -> float:
        """Energy of one non-MAC operation (an add or a comparison) on ``bits``-bit operands: the adder term."""
        return self.add * (bits / self.ref_bits) ** self.add_exponent if self.add else 0.0
