"""The codec's only door to pyca/cryptography: HPKE with the MLKEM768-X25519 KEM.

PyNaCl (libsodium) has no ML-KEM and no HPKE, so the hybrid post-quantum
recipient type uses pyca/cryptography's HPKE (RFC 9180, base mode) with the
MLKEM768-X25519 KEM of draft-ietf-hpke-pq (X-Wing), HKDF-SHA-256 and
ChaCha20-Poly1305: the KEM combiner, ML-KEM and HPKE's key schedule are all
pyca's. This module only expands the identity's seed as the specification
says, splits ``enc`` from the ciphertext, and translates pyca's exceptions
into confvault errors where they enter.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from confvault.errors import HeaderError, KeyFormatError

SEED_SIZE = 32
_EXPANDED_SIZE = 96  # SHAKE256(seed): 64 bytes of ML-KEM-768 seed, 32 of X25519 key
_MLKEM_SEED_SIZE = 64
_MLKEM_PUBLIC_SIZE = 1184
_MLKEM_CIPHERTEXT_SIZE = 1088
_X25519_SIZE = 32
PUBLIC_KEY_SIZE = _MLKEM_PUBLIC_SIZE + _X25519_SIZE  # 1216: ek_PQ || ek_T
ENC_SIZE = _MLKEM_CIPHERTEXT_SIZE + _X25519_SIZE  # 1120: ct_PQ || ct_T

_SUITE = hpke.Suite(
    hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
)


class HybridPublicKey:
    """An MLKEM768-X25519 encapsulation key, checked when it is loaded."""

    __slots__ = ("_key",)

    def __init__(self, data: bytes) -> None:
        if len(data) != PUBLIC_KEY_SIZE:
            raise KeyFormatError(
                f"MLKEM768-X25519 public key must be {PUBLIC_KEY_SIZE} bytes"
            )
        try:
            pq = mlkem.MLKEM768PublicKey.from_public_bytes(data[:_MLKEM_PUBLIC_SIZE])
            classic = x25519.X25519PublicKey.from_public_bytes(
                data[_MLKEM_PUBLIC_SIZE:]
            )
        except ValueError as err:
            raise KeyFormatError("invalid MLKEM768-X25519 public key") from err
        self._key = hpke.MLKEM768X25519PublicKey(pq, classic)

    def seal_base(self, plaintext: bytes, info: bytes) -> tuple[bytes, bytes]:
        """HPKE SealBase with an empty aad: return (enc, ciphertext)."""
        sealed = _SUITE.encrypt(plaintext, self._key, info=info)
        return sealed[:ENC_SIZE], sealed[ENC_SIZE:]


class HybridPrivateKey:
    """The decapsulation key expanded from a 32-byte seed (never shown in a repr)."""

    __slots__ = ("_classic", "_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise KeyFormatError(f"MLKEM768-X25519 seed must be {SEED_SIZE} bytes")
        # draft-ietf-hpke-pq / filippo.io/hpke-pq, MLKEM768-X25519 DeriveKeyPair:
        # SHAKE256(seed) -> ML-KEM-768 seed (d || z) || X25519 private key.
        shake = hashes.Hash(hashes.SHAKE256(digest_size=_EXPANDED_SIZE))
        shake.update(seed)
        expanded = shake.finalize()
        pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:_MLKEM_SEED_SIZE])
        classic = x25519.X25519PrivateKey.from_private_bytes(
            expanded[_MLKEM_SEED_SIZE:]
        )
        self._classic = classic
        self._key = hpke.MLKEM768X25519PrivateKey(pq, classic)
        self.public_key: bytes = (
            pq.public_key().public_bytes_raw() + classic.public_key().public_bytes_raw()
        )

    def __repr__(self) -> str:
        return "HybridPrivateKey(...)"

    def open_base(self, enc: bytes, ciphertext: bytes, info: bytes) -> bytes | None:
        """HPKE OpenBase with an empty aad; ``None`` when the tag does not verify.

        A share whose X25519 half gives the all-zero shared secret (a
        low-order point) is refused with HeaderError before decapsulating,
        as for X25519 stanzas.
        """
        if len(enc) != ENC_SIZE:
            raise HeaderError(f"mlkem768x25519 share must be {ENC_SIZE} bytes")
        try:
            self._classic.exchange(
                x25519.X25519PublicKey.from_public_bytes(enc[_MLKEM_CIPHERTEXT_SIZE:])
            )
        except ValueError as err:
            raise HeaderError(
                "mlkem768x25519 share yields a low-order X25519 shared secret"
            ) from err
        try:
            return _SUITE.decrypt(enc + ciphertext, self._key, info=info)
        except InvalidTag:
            return None
        except ValueError as err:
            raise HeaderError("mlkem768x25519 stanza cannot be decapsulated") from err
