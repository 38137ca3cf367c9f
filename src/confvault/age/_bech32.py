"""Bech32 (BIP 173) without the 90-character limit, as the age spec uses it."""

from __future__ import annotations

from confvault.errors import KeyFormatError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(
    data: bytes | list[int], from_bits: int, to_bits: int, pad: bool
) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise KeyFormatError("invalid bech32 padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` under ``hrp``; the case of ``hrp`` decides the output's case."""
    lower = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    checksum_in = _hrp_expand(lower) + values + [0] * 6
    mod = _polymod(checksum_in) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower + "1" + "".join(_CHARSET[v] for v in values + checksum)
    return text.upper() if hrp.isupper() else text


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into (hrp, data). The hrp is returned as written."""
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32 string mixes upper and lower case")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise KeyFormatError("bech32 string has invalid characters")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise KeyFormatError("bech32 string has no valid separator")
    hrp = text[:pos]
    lower = text.lower()
    try:
        values = [_CHARSET.index(c) for c in lower[pos + 1 :]]
    except ValueError as err:
        raise KeyFormatError("bech32 string has invalid characters") from err
    if _polymod(_hrp_expand(hrp.lower()) + values) != 1:
        raise KeyFormatError("bech32 checksum does not match")
    data = bytes(_convert_bits(values[:-6], 5, 8, pad=False))
    return hrp, data
