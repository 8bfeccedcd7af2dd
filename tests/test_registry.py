"""The one Registry type: registering, aliases, overrides, close-name errors, wildcards, copies."""

import pytest

from dnnergy.errors import UserInputError
from dnnergy.registry import Registry


def _table():
    table = Registry("widget")

    @table.register()
    def spinner():
        return "spin"

    table.add("sprocket", 2, aliases=("cog",))
    return table


def test_register_returns_the_entry_and_defaults_to_its_name():
    table = _table()
    assert table.get("spinner")() == "spin"
    assert table.get("cog") == 2 and table.resolve("cog") == "sprocket"
    assert list(table) == ["spinner", "sprocket"] and len(table) == 2
    assert "cog" in table and "nope" not in table
    assert table.aliases() == {"cog": "sprocket"}


def test_duplicates_need_override():
    table = _table()
    with pytest.raises(RuntimeError, match="'spinner' is already registered"):
        table.add("spinner", 3)
    with pytest.raises(RuntimeError, match="'cog' is already registered"):
        table.add("gear", 3, aliases=("cog",))
    table.add("spinner", 3, override=True)
    assert table.get("spinner") == 3


def test_an_entry_can_take_over_an_alias_with_override():
    table = _table()
    table.add("cog", 5, override=True)
    assert table.get("cog") == 5 and table.get("sprocket") == 2 and "cog" not in table.aliases()


@pytest.mark.parametrize("bad", ["", None, 3])
def test_names_must_be_non_empty_strings(bad):
    with pytest.raises(TypeError, match="non-empty strings"):
        Registry("widget").add(bad, 1)


def test_unknown_names_suggest_close_ones_and_list_the_known():
    with pytest.raises(UserInputError, match=r"unknown widget 'sprokcet'; did you mean sprocket\? \(known: spinner, sprocket\)"):
        _table().get("sprokcet")
    with pytest.raises(UserInputError, match=r"unknown widget 'zzz' \(known: spinner, sprocket\)"):
        _table().get("zzz")


def test_list_filters_with_wildcards_and_excludes():
    table = _table()
    table.add("alpha", 0)
    assert table.list() == ["alpha", "spinner", "sprocket"]
    assert table.list("sp*") == ["spinner", "sprocket"]
    assert table.list("*", exclude=("sp*",)) == ["alpha"]


def test_copy_is_independent():
    table = _table()
    other = table.copy()
    other.add("extra", 9)
    assert "extra" in other and "extra" not in table
