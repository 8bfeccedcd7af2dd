"""A small valid hardware description, shared by the loader tests (one DRAM, one buffer, fp32 MACs)."""

GOOD = """\
name: mine
unit: pJ
word_bits: 32
levels:
  - {name: DRAM, kind: dram, energy: 640, ref_bits: 32}
  - {name: SRAM, kind: buffer, energy: 5, ref_bits: 32, capacity_bytes: 65536}
mac: {format: fp32, formats: {fp32: {bits: 32, mult: 3.7, add: 0.9}}}
"""
