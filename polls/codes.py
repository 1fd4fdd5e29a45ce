"""Join codes: short, uppercase, and forgiving about characters people confuse."""

import re
import secrets

# Generated codes avoid 0/O, 1/I/L and 5/S-like pairs entirely.
GENERATED_ALPHABET = "ABCDEFGHJKMNPQRTUVWXYZ2346789"
GENERATED_LENGTH = 6
# What a typed code is reduced to: the letters O and I never occur in a code, so reading them
# as the digits 0 and 1 is lossless (a hand-chosen code like KSF2018 keeps its digits).
_TYPED_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
CODE_PATTERN = re.compile(r"^[A-HJKMNP-Z0-9]{4,12}$")


def generate_code() -> str:
    return "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(GENERATED_LENGTH))


def normalise_code(typed: str) -> str:
    """Uppercase, drop spaces and dashes, and read O/I/L as 0/1."""
    cleaned = re.sub(r"[\s\-_.]", "", typed or "").upper()
    return cleaned.translate(_TYPED_LOOKALIKES)


def is_valid_code(code: str) -> bool:
    return bool(CODE_PATTERN.match(code))
