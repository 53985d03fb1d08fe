"""Password assessment (AUTH-04) and keyed fingerprints (AUTH-03). Nothing here keeps, logs or
returns a password; results carry only lengths, classes, a score and an HMAC.

Rule of Decision 724/QD-BTTTT: at least 8 characters with upper case, lower case, a digit and a
special character. On top, a zxcvbn strength score (0-4) with the vendor, model and username as
user inputs, so ``Hikvision2024!`` does not pass for strong. zxcvbn is imported on first use
only: it costs ~11 MiB RSS (its frequency lists), which an audit should not carry.

Scores computed ahead (``vault set``): the vault stores, next to each password, its zxcvbn scores
with the username as user input at each rank it can take (0, 1 or 2 identity words before it),
see ``stored_scores``. At audit time the vendor and model are known only from identification;
zxcvbn matches a user input only as a whole word inside the password (lower-cased, reversed or
with l33t substitutions), so when neither word can occur in the password (``_may_contain``, a
superset of zxcvbn's matching), the stored score is the score zxcvbn would compute, and zxcvbn is
never imported. Otherwise (a word may occur, or no stored score) zxcvbn runs as before.

Fingerprints: ``HMAC-SHA256(site_key, password)``. The fingerprint key (called the site key
here) is a random secret of at least 32 bytes kept in the agent's vault and never sent; an
organisation imports one key on all its agents (``vault import-site-key``, ADR 0019), so the
collector can spot one password used on several cameras of its sites by comparing fingerprints,
and cannot guess passwords offline from them. ``key_id`` (a hash of the key, not the key) tells the
collector which fingerprints are comparable: only those with the same key id. Rotating the key
makes old fingerprints incomparable, by design.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

MIN_LENGTH = 8
MIN_SITE_KEY_BYTES = 32
_SPECIAL = frozenset(string.punctuation + " ")


@dataclass(frozen=True, slots=True)
class PasswordAssessment:
    length: int
    upper: bool
    lower: bool
    digit: bool
    special: bool
    score: int  # zxcvbn 0-4

    @property
    def class_count(self) -> int:
        return sum((self.upper, self.lower, self.digit, self.special))

    @property
    def meets_724(self) -> bool:
        return self.length >= MIN_LENGTH and self.class_count == 4


def _zxcvbn_score(password: str, user_inputs: list[str]) -> int:
    from zxcvbn import zxcvbn  # noqa: PLC0415 (lazy: ~14 MB RSS, only needed when assessing)

    result = zxcvbn(password[:100], user_inputs=user_inputs)  # zxcvbn is quadratic in length
    return int(result["score"])


# zxcvbn's l33t table (matching.L33T_TABLE) closed into classes: a character and every one it may
# stand for share a class, so comparing class strings over-approximates every l33t reading.
_L33T_CLASSES: Final = ("a4@", "b8", "c({[<", "e3", "g69", "il1!|7t+", "o0", "s$5", "x%", "z2")
_SKELETON: Final = str.maketrans({c: group[0] for group in _L33T_CLASSES for c in group})
# the stored scores, keyed by the credential they were computed for (see ``remember``)
_STORED: dict[tuple[str, str], tuple[int, ...]] = {}
STORED_RANKS: Final = 3  # the username is the 1st, 2nd or 3rd user input


def _skeleton(text: str) -> str:
    return text.lower().translate(_SKELETON)


def _may_contain(password: str, word: str) -> bool:
    """False only when zxcvbn cannot match ``word`` (a user input) anywhere in ``password``."""
    needle, hay = _skeleton(word), _skeleton(password)
    return needle in hay or needle in hay[::-1]


def stored_scores(password: str, username: str) -> tuple[int, ...]:
    """zxcvbn scores of ``password`` with ``username`` as the user input preceded by 0, 1 and 2
    words that match nothing (what ``vault set`` keeps; see the module doc)."""
    pad = "\0" * (len(password) + 1)  # longer than the password: never a match
    if not password:
        return (0,) * STORED_RANKS
    if not username:
        return (_zxcvbn_score(password, []),) * STORED_RANKS
    return tuple(
        _zxcvbn_score(password, [pad + str(i) for i in range(rank)] + [username])
        for rank in range(STORED_RANKS)
    )


def remember(username: str, password: str, scores: Sequence[int]) -> None:
    """Make ``scores`` (from ``stored_scores``, kept in the vault) known to ``assess_password``."""
    if len(scores) == STORED_RANKS:
        _STORED[username, password] = tuple(scores)


def _score(password: str, inputs: list[str], username: str | None) -> int:
    if not password:
        return 0
    stored = _STORED.get((username or "", password))
    if stored is not None:
        others = inputs[:-1] if username else inputs
        if (
            (not username or inputs[-1:] == [username])
            and len(others) < STORED_RANKS
            and not any(_may_contain(password, word) for word in others)
        ):
            return stored[len(others)]
    return _zxcvbn_score(password, inputs)


def assess_password(
    password: str, *, user_inputs: Iterable[str | None] = (), username: str | None = None
) -> PasswordAssessment:
    """Assess ``password``; ``user_inputs`` are words an attacker knows (vendor, model, user).

    ``username``: the last of ``user_inputs`` when it is the vault entry's username, so that a
    score stored at ``vault set`` time can stand in for zxcvbn (see the module doc)."""
    inputs = [word for word in user_inputs if word]
    return PasswordAssessment(
        length=len(password),
        upper=any(c.isupper() for c in password),
        lower=any(c.islower() for c in password),
        digit=any(c.isdigit() for c in password),
        special=any(c in _SPECIAL or not c.isalnum() for c in password),
        score=_score(password, inputs, username),
    )


@dataclass(frozen=True, slots=True)
class SiteKey:
    """The per-site fingerprint key from the vault. Never printed, never sent."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SITE_KEY_BYTES:
            raise ValueError(f"a site key needs at least {MIN_SITE_KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"camwarden site key id\0" + self.secret).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    key_id: str
    value: str  # hex HMAC-SHA256


def fingerprint(key: SiteKey, password: str) -> Fingerprint:
    mac = hmac.new(key.secret, password.encode("utf-8"), hashlib.sha256).hexdigest()
    return Fingerprint(key.key_id, mac)
