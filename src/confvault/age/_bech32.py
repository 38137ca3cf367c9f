"""Bech32 (BIP 173) without the 90-character limit, as the age spec uses it.

Post-quantum keys (``age1pq1...``) are 1,959 characters long, so the bit
regrouping is base64's base32 (bech32's 5-bit groups are exactly RFC 4648
base32's, under another alphabet) instead of a loop over bits, and the
checksum makes one table lookup per character.
"""

from __future__ import annotations

import base64
import binascii
import re

from confvault.errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648: value v is _BASE32[v]
_TO_BECH32 = str.maketrans(_BASE32, _CHARSET)
_FROM_BECH32 = str.maketrans(_CHARSET, _BASE32)
_VALUE_OF = bytes(
    _CHARSET.index(chr(b)) if chr(b) in _CHARSET else 255 for b in range(256)
)
_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _generator_xor(top: int) -> int:
    out = 0
    for i, gen in enumerate(_GENERATOR):
        if (top >> i) & 1:
            out ^= gen
    return out


# The generators XORed for each value of the top five bits: one lookup per
# character instead of five tests.
_GENERATOR_XOR = tuple(_generator_xor(top) for top in range(32))


def _polymod(values: bytes | list[int]) -> int:
    chk = 1
    table = _GENERATOR_XOR
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ value) ^ table[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_groups(data: bytes) -> str:
    """``data`` as bech32 characters, 5 bits each, the last group zero-padded."""
    return base64.b32encode(data).decode("ascii").rstrip("=").translate(_TO_BECH32)


def _from_groups(chars: str) -> bytes:
    """The bytes of bech32 characters: fewer than 5 padding bits, all zero."""
    groups = chars.translate(_FROM_BECH32)
    try:
        # base32 refuses exactly the lengths that leave 5 or more bits over.
        data = base64.b32decode(groups + "=" * (-len(groups) % 8))
    except binascii.Error as err:
        raise KeyFormatError("invalid bech32 padding") from err
    spare = 5 * len(chars) % 8  # the padding bits, at the end of the last group
    if chars and _VALUE_OF[ord(chars[-1])] & ((1 << spare) - 1):
        raise KeyFormatError("invalid bech32 padding")
    return data


def _checksum(hrp: str, data_part: str) -> str:
    values = _hrp_expand(hrp) + list(data_part.encode("ascii").translate(_VALUE_OF))
    mod = _polymod(values + [0] * 6) ^ 1
    return "".join(_CHARSET[(mod >> 5 * (5 - i)) & 31] for i in range(6))


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` under ``hrp``; the case of ``hrp`` decides the output's case."""
    lower = hrp.lower()
    data_part = _to_groups(data)
    text = lower + "1" + data_part + _checksum(lower, data_part)
    return text.upper() if hrp.isupper() else text


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into (hrp, data). The hrp is returned as written."""
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32 string mixes upper and lower case")
    if not _PRINTABLE.fullmatch(text):
        raise KeyFormatError("bech32 string has invalid characters")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise KeyFormatError("bech32 string has no valid separator")
    hrp = text[:pos]
    lower = text.lower()
    values = lower[pos + 1 :].encode("ascii").translate(_VALUE_OF)
    if 255 in values:
        raise KeyFormatError("bech32 string has invalid characters")
    if _polymod(_hrp_expand(hrp.lower()) + list(values)) != 1:
        raise KeyFormatError("bech32 checksum does not match")
    return hrp, _from_groups(lower[pos + 1 : -6])
