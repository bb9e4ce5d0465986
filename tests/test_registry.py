"""The registries behind ``load`` and ``make_with``: names in order, and unknown names listing the known ones."""

from __future__ import annotations

import pytest

from gpuudf.registry import Registry


class UnknownColourError(LookupError):
    pass


def unknown_colour(name: object, names: tuple[str, ...]) -> Exception:
    return UnknownColourError(f"no colour {name!r}; known: {', '.join(names)}")


@pytest.fixture
def colours() -> Registry[int]:
    registry: Registry[int] = Registry("colour", unknown_colour)
    registry.register("red", 1)
    registry.register("green", 2)
    return registry


def test_a_registered_name_is_looked_up_and_names_keep_the_order_of_registration(colours: Registry[int]) -> None:
    colours.register("blue", 3)
    assert colours.lookup("green") == 2
    assert colours.names() == ("red", "green", "blue")
    assert list(colours) == ["red", "green", "blue"]
    assert colours.items() == (("red", 1), ("green", 2), ("blue", 3))
    assert "blue" in colours
    assert len(colours) == 3


@pytest.mark.parametrize("name", ["purple", "", "Red", 3, None, ["red"]])
def test_an_unknown_name_raises_the_owners_error_listing_the_registered_names(
    colours: Registry[int], name: object
) -> None:
    with pytest.raises(UnknownColourError, match=r"no colour .*; known: red, green$"):
        colours.lookup(name)
    assert name not in colours


def test_a_name_is_registered_only_once_until_it_is_unregistered(colours: Registry[int]) -> None:
    with pytest.raises(ValueError, match="colour 'red' is registered already; unregister it first"):
        colours.register("red", 9)
    colours.unregister("red")
    colours.register("red", 9)
    assert colours.lookup("red") == 9
    assert colours.names() == ("green", "red")


@pytest.mark.parametrize("name", ["", 3])
def test_a_registered_name_must_be_a_non_empty_string(colours: Registry[int], name: object) -> None:
    with pytest.raises(ValueError, match="a colour is registered under a non-empty string"):
        colours.register(name, 0)  # type: ignore[arg-type]


def test_unregistering_an_unknown_name_is_a_value_error_listing_the_registered_names(
    colours: Registry[int],
) -> None:
    with pytest.raises(ValueError, match="colour 'blue' is not registered; registered: red, green"):
        colours.unregister("blue")
