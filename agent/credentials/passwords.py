"""Password assessment (AUTH-04) and keyed fingerprints (AUTH-03). Nothing here keeps, logs or
returns a password; results carry only lengths, classes, a score and an HMAC.

Rule of Decision 724/QD-BTTTT: at least 8 characters with upper case, lower case, a digit and a
special character. On top, a zxcvbn strength score (0-4) with the vendor, model and username as
user inputs, so ``Hikvision2024!`` does not pass for strong. zxcvbn is imported on first use
only: it costs ~14 MB RSS on the agent box.

Fingerprints: ``HMAC-SHA256(site_key, password)``. The site key is a per-site random secret of
at least 32 bytes kept in the agent's vault and never sent; agents of one site share it, so the
collector can spot one password used on several cameras of that site by comparing fingerprints,
and cannot guess passwords offline from them. ``key_id`` (a hash of the key, not the key) tells the
collector which fingerprints are comparable: only those with the same key id, within one site or
organisation. Rotating the site key makes old fingerprints incomparable, by design.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Iterable
from dataclasses import dataclass, field

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


def assess_password(password: str, *, user_inputs: Iterable[str | None] = ()) -> PasswordAssessment:
    """Assess ``password``; ``user_inputs`` are words an attacker knows (vendor, model, user)."""
    inputs = [word for word in user_inputs if word]
    return PasswordAssessment(
        length=len(password),
        upper=any(c.isupper() for c in password),
        lower=any(c.islower() for c in password),
        digit=any(c.isdigit() for c in password),
        special=any(c in _SPECIAL or not c.isalnum() for c in password),
        score=_zxcvbn_score(password, inputs) if password else 0,
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
