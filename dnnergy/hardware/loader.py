"""Read :class:`Hardware` from YAML files or the bundled presets, with errors that name file and field."""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import fnmatch
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import HardwareConfigError, UserInputError
from .hardware import Hardware, PEArray
from .level import MemoryLevel
from .mac import MacCost
from .sparse import ZeroActions

__all__ = ["load_hardware", "hardware_from_dict", "list_presets", "PRESET_DIR"]

#: Folder of the bundled presets; a new preset is one more ``<name>.yaml`` file here.
PRESET_DIR = Path(__file__).with_name("presets")

_TOP = {"name": True, "unit": True, "word_bits": True, "levels": True, "mac": True, "pe_array": False, "description": False,
        "zero_actions": False}
_LEVEL = {"name": True, "kind": True, "energy": True, "ref_bits": True, "capacity_bytes": False, "per_pe": False, "storage": False}
_ZERO = {"weight": False, "ifmap": False}
_MAC = {"format": True, "formats": True, "mult_exponent": False, "add_exponent": False}
_FORMAT = {"bits": True, "mult": True, "add": True}
_PE = {"rows": True, "cols": True, "filter_words": True, "ifmap_words": True, "psum_words": True, "shared_rf_words": False}


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the bundled hardware presets matching the fnmatch ``pattern``, sorted.

    Example: ``list_presets() == ["eyeriss", "eyeriss_v2", "horowitz45"]``; ``list_presets("eye*")`` gives the two
    Eyeriss presets.
    """
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if fnmatch.fnmatch(p.stem, pattern))


def load_hardware(source: str | Path) -> Hardware:
    """Load a :class:`Hardware` from a preset name (``"eyeriss"``, ``"horowitz45"``) or a YAML path.

    The schema is documented in ``docs/hardware.md`` (per-level ``storage`` formats and
    ``zero_actions``: ``docs/sparse-hardware.md``); energies are in the file's
    ``unit`` per access of ``ref_bits`` bits. Unknown keys (with the close name
    suggested), missing fields and invalid values raise
    :class:`~dnnergy.errors.HardwareConfigError` naming the file and the field, e.g.
    ``my.yaml: levels[1]: MemoryLevel 'SRAM': energy must be >= 0 (got -5)``.
    The file is UTF-8 (or UTF-8/16/32 with a byte-order mark); ``1e5`` is a number;
    a key given twice in one mapping is an error. Example: ``load_hardware("horowitz45")`` has unit
    ``"pJ"``, 32-bit words and levels DRAM (640 pJ), SRAM (5 pJ) and RF (1 pJ per access); see
    :class:`Hardware` for ``"eyeriss"`` (MAC-normalized).
    """
    if isinstance(source, str) and source in list_presets():
        return _load_preset(source)
    path = Path(source)
    if not path.is_file():
        close = difflib.get_close_matches(str(source), list_presets(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; presets: {', '.join(list_presets())}"
        raise HardwareConfigError(f"hardware {str(source)!r} is neither a preset nor a file{hint}")
    return _load_file(path)


@functools.lru_cache(maxsize=None)
def _load_preset(name: str) -> Hardware:
    """Presets are immutable package data: parse each once per process (``estimate`` may run thousands of times)."""
    return _load_file(PRESET_DIR / f"{name}.yaml")


def _load_file(path: Path) -> Hardware:
    text = _decode(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise HardwareConfigError(f"{path}: not valid YAML ({err})") from None
    except RecursionError:
        raise HardwareConfigError(f"{path}: not valid hardware YAML (nested too deeply)") from None
    _check_size(data, path)
    return hardware_from_dict(data, source=str(path))


#: Most values (scalars and collections, each alias use counted again) a hardware file may expand to.
MAX_VALUES = 100_000


def _check_size(data: Any, path: Path) -> None:
    """Refuse a document whose aliases expand it beyond :data:`MAX_VALUES` values ("billion laughs":
    ten nested anchors of nine aliases are 9**9 values, which any error message showing them would walk)."""
    stack, seen = [data], 0
    while stack:
        seen += 1
        if seen > MAX_VALUES:
            raise HardwareConfigError(f"{path}: not valid hardware YAML (its aliases expand to more than {MAX_VALUES:,} values)")
        node = stack.pop()
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


#: Byte-order marks and their codecs, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(path: Path) -> str:
    """The file's text: UTF-8, or UTF-8/16/32 announced by a byte-order mark (as the YAML spec allows)."""
    raw = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise HardwareConfigError(
            f"{path}: cannot decode as {encoding.upper()} (byte {err.start}); save the file as UTF-8, "
            "or as UTF-16/UTF-32 with a byte-order mark"
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys and reads ``1e5``/``2E-3`` as floats.

    YAML 1.1 (PyYAML) only knows floats with a dot, so ``energy: 1e5`` would be the
    string ``'1e5'``; YAML 1.2 and every person read it as 100000.0.
    """

    yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    #: Deepest nesting of collections accepted (a hardware file needs 5). PyYAML's scanner slows
    #: quadratically with ``[[[[...`` depth (1,000 levels: seconds); refusing early keeps it instant.
    max_depth = 64

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        if self.flow_level >= self.max_depth:
            raise yaml.scanner.ScannerError(None, None, f"nested too deeply (more than {self.max_depth} levels)", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.max_depth:
                raise yaml.composer.ComposerError(None, None, f"nested too deeply (more than {self.max_depth} levels)",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} on line {line} (first on line {seen[key]})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def hardware_from_dict(data: Any, source: str = "<dict>") -> Hardware:
    """Build a :class:`Hardware` from plain data with the YAML schema; ``source`` prefixes error messages.

    Example: ``hardware_from_dict({"name": "tiny", "unit": "pJ", "word_bits": 8, "levels": [{"name": "DRAM",
    "kind": "dram", "energy": 100, "ref_bits": 8}, {"name": "RF", "kind": "rf", "energy": 1, "ref_bits": 8}],
    "mac": {"format": "int8", "formats": {"int8": {"bits": 8, "mult": 0.2, "add": 0.03}}}})`` is a two-level
    accelerator in pJ; leaving out ``"unit"`` raises ``HardwareConfigError("<dict>: missing field 'unit'")``.
    """
    top = _fields(data, _TOP, source, "")
    levels_data = top["levels"]
    if not isinstance(levels_data, list) or not levels_data:
        raise HardwareConfigError(f"{source}: levels: must be a non-empty list of levels")
    levels = tuple(_level(item, source, f"levels[{i}]") for i, item in enumerate(levels_data))
    mac, formats = _mac(top["mac"], source)
    pe_array = None
    if top.get("pe_array") is not None:
        pe_array = _build(PEArray, _fields(top["pe_array"], _PE, source, "pe_array"), source, "pe_array")
    if "zero_actions" in top:
        top["zero_actions"] = _build(ZeroActions, _fields(top["zero_actions"], _ZERO, source, "zero_actions"), source, "zero_actions")
    fields = {k: v for k, v in top.items() if k not in ("levels", "mac", "pe_array")}
    return _build(Hardware, {**fields, "levels": levels, "mac": mac, "mac_formats": formats, "pe_array": pe_array}, source, "")


def _level(data: Any, source: str, where: str) -> MemoryLevel:
    level = _fields(data, _LEVEL, source, where)
    if "storage" in level:
        storage = level["storage"]
        if not isinstance(storage, Mapping):
            raise HardwareConfigError(f"{source}: {where}.storage: must map weight/ifmap/ofmap to formats (e.g. {{weight: csc}})")
        level["storage"] = {datum: _format(spec, source, f"{where}.storage.{datum}") for datum, spec in storage.items()}
    return _build(MemoryLevel, level, source, where)


def _format(spec: Any, source: str, where: str) -> Any:
    """A storage format from YAML: a registered code name (``csc``) or ``{format: csc, coord_bits: 4, ...}``,
    the extra keys replacing fields of the registered code object (a dataclass)."""
    from ..energy.codes import get_code  # here, not at the top: dnnergy.energy imports this package

    prefix = f"{source}: {where}"
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and "format" in spec:
        params = dict(spec)
        name = params.pop("format")
    else:
        raise HardwareConfigError(f"{prefix}: expected a format name or a mapping with 'format' (got {spec!r:.80})")
    try:
        code = get_code(str(name))
    except UserInputError as err:
        raise HardwareConfigError(f"{prefix}: {err}") from None
    if not params:
        return code
    fields = [f.name for f in dataclasses.fields(code) if f.name != "name"] if dataclasses.is_dataclass(code) else []
    for key in params:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; {name!r} takes {', '.join(fields) or 'no parameters'}"
            raise HardwareConfigError(f"{prefix}: unknown field {key!r}{hint}")
    try:
        return dataclasses.replace(code, **params)
    except (TypeError, ValueError) as err:
        raise HardwareConfigError(f"{prefix}: {err}") from None


def _mac(data: Any, source: str) -> tuple[MacCost, tuple[MacCost, ...]]:
    mac = _fields(data, _MAC, source, "mac")
    table = mac["formats"]
    if not isinstance(table, Mapping) or not table:
        raise HardwareConfigError(f"{source}: mac.formats: must map format names to {{bits, mult, add}}")
    exponents = {k: mac[k] for k in ("mult_exponent", "add_exponent") if k in mac}
    formats = []
    for name, entry in table.items():
        where = f"mac.formats.{name}"
        values = _fields(entry, _FORMAT, source, where)
        formats.append(
            _build(MacCost, {"name": str(name), "ref_bits": values["bits"], "mult": values["mult"], "add": values["add"], **exponents}, source, where)
        )
    chosen = [fmt for fmt in formats if fmt.name == str(mac["format"])]
    if not chosen:
        known = ", ".join(map(str, table))
        raise HardwareConfigError(f"{source}: mac.format: {mac['format']!r} is not one of mac.formats ({known})")
    return chosen[0], tuple(formats)


def _fields(data: Any, schema: dict[str, bool], source: str, where: str) -> dict[str, Any]:
    """Check a mapping against ``schema`` (key -> required); unknown keys get a close-name hint."""
    prefix = f"{source}: {where}" if where else source
    if not isinstance(data, Mapping):
        raise HardwareConfigError(f"{prefix}: expected a mapping of fields (got {type(data).__name__})")
    for key in data:
        if key not in schema:
            close = difflib.get_close_matches(str(key), schema, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(schema)}"
            raise HardwareConfigError(f"{prefix}: unknown field {key!r}{hint}")
    missing = [key for key, required in schema.items() if required and key not in data]
    if missing:
        raise HardwareConfigError(f"{prefix}: missing field {missing[0]!r}")
    return dict(data)


def _build(cls: type, kwargs: dict[str, Any], source: str, where: str) -> Any:
    """Construct ``cls`` and re-raise its validation error prefixed with the file and location."""
    try:
        return cls(**kwargs)
    except HardwareConfigError as err:
        prefix = f"{source}: {where}" if where else source
        raise HardwareConfigError(f"{prefix}: {err}") from None
