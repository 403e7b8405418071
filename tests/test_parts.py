"""The part list and its background part, the colours that follow from it, and the device resolver."""

from __future__ import annotations

import pytest

from partdistill_cli.colors import OTHER_COLOR, PALETTE, part_colors
from partdistill_cli.device import DeviceError, check_device_name, resolve_device
from partdistill_cli.parts import BACKGROUND_PART, PartList, PartsError


def test_parse_a_user_part_list():
    assert PartList.parse("arm, back,seat ,leg").names == ["arm", "back", "seat", "leg"]
    assert PartList.parse(["lid", "body"]).names == ["lid", "body"]
    assert PartList.parse(None, "Chair").names == ["back", "seat", "leg", "armrest"]
    # One part asked for: "auto" adds the background part, or everything would be that part.
    lid = PartList.parse("lid")
    assert lid.names == ["lid", BACKGROUND_PART] and lid.background_index == 1 and len(lid) == 2
    assert PartList.parse("lid", other="off").names == ["lid"]
    assert PartList.parse("lid,body", other="on").background_index == 2
    assert PartList.parse("lid,body").background_index is None


@pytest.mark.parametrize(
    ("parts", "category", "message"),
    [
        ("a,a", None, "--parts lists a part twice: a,a"),
        ("lid,other", None, "'other' is reserved for the background part (see --other)"),
        (None, "spaceship", "no default parts known for category 'spaceship'"),
        (None, None, "give the part names with --parts"),
        (" , ", None, "give the part names with --parts"),
    ],
)
def test_parse_refuses_what_cannot_be_a_part_list(parts, category, message):
    with pytest.raises(PartsError) as err:
        PartList.parse(parts, category)
    assert message in str(err.value)


def test_stored_names_round_trip_and_keep_the_cache_key_format():
    with_bg = PartList(("lid",), background=True)
    assert PartList.of_names(with_bg.names) == with_bg
    assert PartList.of_names(["lid", "body"]) == PartList(("lid", "body"))
    # Knowledge caches written before the part list had a type keyed a background part as "+other".
    assert with_bg.cache_key() == ["lid", "+other"] and PartList(("a", "b")).cache_key() == ["a", "b"]
    with pytest.raises(PartsError, match="cannot sit beside the background part"):
        PartList(("other", "lid"), background=True)
    with pytest.raises(PartsError, match="empty"):
        PartList(())


def test_the_background_part_gets_its_own_colour_only_as_the_background():
    assert tuple(part_colors(["lid", "other"])[1]) == OTHER_COLOR
    # A part that happens to be called "other" but is not last is an ordinary part.
    colors = part_colors(["other", "lid"])
    assert tuple(colors[0]) == PALETTE[0] and tuple(colors[1]) == PALETTE[1]
    assert part_colors([]).shape == (0, 3)


def test_one_device_resolver():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device_name("cuda:1") == "cuda:1"
    for bad in ("tpu", "cpu:0", "cuda:x"):
        with pytest.raises(DeviceError, match="unknown device"):
            check_device_name(bad)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match=r"CUDA is not available \(use --device cpu\)"):
            resolve_device("cuda")
