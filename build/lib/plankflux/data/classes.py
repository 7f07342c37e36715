"""The trap-particle class list of Paper A and its two label groupings, as data.

Every other module takes class names from here; nothing else spells them out.

* ``TRAP_CLASSES``: the 14 classes a member predicts, in head order.
* ``FLUX_GROUP``: class -> flux group (``phyto_*`` pool into ``phytoplankton``);
  ``None`` for classes that carry no flux (swimmers swam in, the rest are not
  particles).
* ``ORIGINAL_GROUP``: class -> name in the older human annotation scheme, used to
  compare against ``label_original``.
* ``OLD_NAME_ALIASES``: older annotation names -> name in the original scheme.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# (class, flux group or None, original-scheme group)
_CLASS_TABLE: tuple[tuple[str, str | None, str], ...] = (
    ("aggregate", "aggregate", "aggregate"),
    ("long_pellet", "long_pellet", "long_pellet"),
    ("short_pellet", "short_pellet", "short_pellet"),
    ("mini_pellet", "mini_pellet", "mini_pellet"),
    ("salp_pellet", "salp_pellet", "salp_pellet"),
    ("rhizaria", "rhizaria", "rhizaria"),
    ("phyto_dino", "phytoplankton", "phytoplankton"),
    ("phyto_long", "phytoplankton", "phytoplankton"),
    ("phyto_round", "phytoplankton", "phytoplankton"),
    ("swimmer", None, "swimmer"),
    ("fiber_blur", None, "fiber"),
    ("fiber_sharp", None, "fiber"),
    ("bubble", None, "unidentifiable"),
    ("noise", None, "unidentifiable"),
)

TRAP_CLASSES: tuple[str, ...] = tuple(row[0] for row in _CLASS_TABLE)
FLUX_GROUP: Mapping[str, str | None] = {row[0]: row[1] for row in _CLASS_TABLE}
ORIGINAL_GROUP: Mapping[str, str] = {row[0]: row[2] for row in _CLASS_TABLE}
ORIGINAL_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(ORIGINAL_GROUP.values()))
FLUX_GROUPS: tuple[str, ...] = tuple(g for g in dict.fromkeys(FLUX_GROUP.values()) if g)

OLD_NAME_ALIASES: Mapping[str, str] = {
    "dense_detritus": "aggregate",
    "large_loose_pellet": "long_pellet",
    "long_fecal_pellet": "long_pellet",
    **{
        name: "swimmer"
        for name in (
            "amphipod",
            "copepod",
            "foraminifera",
            "pteropod",
            "zooplankton",
            "zooplankton_part",
        )
    },
}

DOMAINS: tuple[str, ...] = ("RR", "FC", "FO", "SR", "JC")


def to_original_scheme(labels: Iterable[str]) -> list[str]:
    """Map 14-class names, original-scheme names or old aliases to the original scheme.

    Raises ``ValueError`` naming every label it does not know.
    """
    known_original = set(ORIGINAL_CLASSES)
    out, unknown = [], set()
    for label in labels:
        if label in ORIGINAL_GROUP:
            out.append(ORIGINAL_GROUP[label])
        elif label in known_original:
            out.append(label)
        elif label in OLD_NAME_ALIASES:
            out.append(OLD_NAME_ALIASES[label])
        else:
            unknown.add(label)
            out.append("")
    if unknown:
        raise ValueError(f"unknown class label(s) for the original scheme: {sorted(unknown)}")
    return out
