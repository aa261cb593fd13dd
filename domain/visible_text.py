"""What a person can see in a text: the one rule for "blank", for messages, cruds and display names.

Standard library only: the post-confirmation Lambda ships this file beside its handler
(bin/aws/deploy packages it), so the API and the Lambda judge a name by the same code.
"""
from __future__ import annotations

import unicodedata

# Letters and symbols that fonts draw as nothing at all (the hangul fillers, the braille blank,
# the Mongolian vowel separator): a text made only of these renders as an empty bubble.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
# Categories that draw nothing by themselves: separators (spaces, line and paragraph breaks),
# controls and format characters (zero-width space, word joiner, BOM, the bidi marks and
# embeddings), surrogates, private-use and unassigned code points, and combining marks, which
# draw only on a base character.
INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"})
# Characters a one-line name may not carry: controls, and format characters, which include the
# bidi overrides that make a name read backwards ("\u202e") and the zero-width ones that make two
# names look alike.
NOT_IN_A_NAME = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def is_visible(character: str) -> bool:
    return (character not in BLANK_LOOKING
            and unicodedata.category(character) not in INVISIBLE_CATEGORIES)


def is_blank(text: str) -> bool:
    """True when nothing of `text` would show: empty, spaces, or only invisible characters."""
    return not any(is_visible(c) for c in text)


# Scripts whose letters look alike ("a" Latin, "а" Cyrillic, "α" Greek...): a name mixing them is
# refused, since "Аndrew Brown" with a Cyrillic А passes for "Andrew Brown". A name in one of
# them alone is shown as it is, beside its handle, which is ASCII and unique.
LOOK_ALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def scripts_of(text: str) -> set[str]:
    """Which of LOOK_ALIKE_SCRIPTS the letters of `text` belong to (by their Unicode names)."""
    found = set()
    for character in text:
        if unicodedata.category(character).startswith("L"):
            script = unicodedata.name(character, "").split(" ", 1)[0]
            if script in LOOK_ALIKE_SCRIPTS:
                found.add(script)
    return found


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a one-line name shown to others (None when it can)."""
    if is_blank(name):
        return "is blank"
    for character in name:
        if unicodedata.category(character) in NOT_IN_A_NAME:
            return f"contains the invisible or control character U+{ord(character):04X}"
    mixed = scripts_of(name)
    if len(mixed) > 1:
        return f"mixes {' and '.join(sorted(s.title() for s in mixed))} letters, which look alike"
    return None
