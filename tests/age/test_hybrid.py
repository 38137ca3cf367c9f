"""The post-quantum hybrid recipient type (mlkem768x25519): keys, stanzas, labels.

The shared vectors (tests/vectors/age-pq) prove conformance of decryption;
these tests pin the rest: the specification's own key pair, the stanza we
write, the strictness of the stanzas we read, and the rule that keeps
classic recipients out of a post-quantum file.
"""

from __future__ import annotations

import base64
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import _bech32, _format
from confvault.age.mlkem768x25519 import MLKEM768X25519_LABEL, STANZA_TYPE
from confvault.errors import (
    HeaderError,
    HeaderMacError,
    IncompatibleRecipientsError,
    IncorrectIdentityError,
    KeyFormatError,
    NoIdentityMatchError,
)

# The example key pair of the C2SP age specification (age.md, "The
# MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum recipient type").
SPEC_IDENTITY = (
    "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR"
)
SPEC_RECIPIENT = "age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5zrqtzdxz95paef6caq5aapdmwjjqpjfdyxnzr2zampc3uxy0dg4z2n2gm9su72p0pc3u0jvev55l694v78snxg3yzvcl7yda0eyytqj6a0ec477lnhcy5hzpz4zq3pxanve4cn62gqj3pjy5lqj9c6kyj4v2z8alktn8zh99970x79gjkv7522hv9kfz35zsnxhsx8wwtmu9cy3ftzjgwcp4sshn3llnylnpdsyz5jm72vefv4x5vfwytrefxg4wq3mv42wcrvkj742479zrxzpvp2p3e9fed9f0739vcu80r7ma28qfhnvlv4gfzel9q654dj3zmuvvz893azhxdvs9fxd0r7jzchzcfcs5mkyyjxhw0n2z6dvp9yn9qfdp29h0azxqyjw6v7fhyuzj7zel0uq6j9rd7wgrpz7mf5dnj43jwsgvrc8qcnhy7tu6dkdujuxzkp9xj43xe8h92ktre2a3u3s8mm5mrp9nr9pwkgtz4mdlq9hgn4fps4k57ff6wddn2fy23t47sm20r8km8sd2pcyyafnet8f0dajsrlyjeah4n3mssr6aseevuuskdvq5lzguyvpgwpta742c6698vgutzqgny8usfg0w2he7kq5vyxjd0f9hqg8xk26y9e4th0gezq92q4cpp5p2y9hf5f2cje5l0c3sa3a2qxmm38pxxvhxh99yzmfz0zk7r2s64nnwjhkfgfr3gf8xnmppcgmaykvh5sh6g7vk9790rf8ws0axmr2t7z8aae5fq2029uvcn2ghgt4fu4wgwdc0k0cz52qkvwmuzj8p8k5jgf3xzk5zmrkavjekjrpeq408xz3zxazwkc6tyfmhayrkfpjhwtz5mp8j8guqe43k2q6m2kte03vrw27y3wmqyu5etmt9dnkwcnnpmu9gz9dekfhdevf42ucshphnrk38ra6hx8w5f8q5ru0xdhrjxmwqf6cused7zc5xvq43r0zscjglpwlptpwydhqw64xz7ptjdyeyzpq2zkxtmzg29gzjpvzva4d3l0cenn9xs297wf4y4ukwrunf57xj6pm7nvrkwvtrt8hwcmgv8x7ajw7258ugf9wvkmk4052ekg87tw5vnx8nq2swyzv77v8yqlwsenvamr0zssknwts8rrhfuwj7ykysnq9jxy0uv3kuyt22djszjdtvpz6d0s0kwh8ryynddzud92emeyvvyqktd0jtj7rvvg5gch25v8smlvny3kvn5gagyz475ze2y6q466xqmz2n3hs77lddeqyta2nch5k2u5yacuk9ywnwfdzvyejnucz724hj77hrrmakm7pr3kxsrxq22ejexlud9fy2kdqmkg5yncz7jm5wv2qjk5w5kvcpqsry2yqffh2la52dxfjkjq5rzhjzeyn6dupn0qwtyv7s4lwg3xdarsdlwe2y3tujy480y7z39q259fzx6jhd2j0f5hagqpcpees7hzc2yrk5cy788uk3s7qvp5cpepx24gvws3m2g433exgwppnkjscec8qu4y9z9r7vccexjcjaen42245lmgmxmuavg9alej92322gvvyy2t6267v09ch64y0m53jff0vjj96s0ypk60hr3jw4myd6m5hpn3xjstx7tl2szhpr5qe8jj08ydjc4wy2rch2fhuy3pdfjax5awe9j99ly5hkntzz9fe5zatgjvzdd0kgtxs25njnajyf6ssekp7gelxquusn4pt25czh3scj68kq79wdn5tgm6yvm9nzavrg043x3msnygf8dweknw5jmqd0uvny6ttsn09508k0c55zfnegrm9efhxpfqdkmhh6gjtqmwze9pyyzk3tlhl53k2ykx3qheyty7saeq0d3fzv49zc0k"

IDENTITY = age.HybridIdentity.generate()
CLASSIC = age.X25519Identity.generate()
FILE_KEY = bytes(range(16))
LOW_ORDER = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("ec" + "ff" * 30 + "7f"),
]


def _stanza() -> _format.Stanza:
    (stanza,) = IDENTITY.recipient.wrap(FILE_KEY)
    return stanza


def _enc(stanza: _format.Stanza) -> bytes:
    return _format.b64decode(stanza.args[0])


# --- keys ------------------------------------------------------------------------


def test_spec_identity_expands_to_the_spec_recipient() -> None:
    identity = age.parse_identity(SPEC_IDENTITY)
    assert isinstance(identity, age.HybridIdentity)
    assert str(identity.recipient) == SPEC_RECIPIENT
    assert identity.encode() == SPEC_IDENTITY
    recipient = age.parse_recipient(SPEC_RECIPIENT)
    assert recipient == identity.recipient
    assert len(recipient.public_key) == 1216


def test_generated_keys_encode_and_parse_back() -> None:
    text = IDENTITY.encode()
    assert text.startswith("AGE-SECRET-KEY-PQ-1")
    assert len(text) == len(SPEC_IDENTITY)
    assert age.parse_identity(text) == IDENTITY
    public = str(IDENTITY.recipient)
    assert public.startswith("age1pq1")
    assert len(public) == len(SPEC_RECIPIENT) > 90  # bech32 without BIP 173's limit
    assert age.parse_recipient(public) == IDENTITY.recipient


def test_repr_never_shows_the_seed() -> None:
    assert repr(IDENTITY) == "HybridIdentity()"
    encoded = IDENTITY.encode()
    assert encoded not in repr(IDENTITY) + repr(IDENTITY._key)
    assert IDENTITY.seed.hex() not in repr(IDENTITY) + repr(IDENTITY._key)


@pytest.mark.parametrize(
    "text",
    [
        SPEC_IDENTITY.lower(),  # bech32 of a secret key is upper case
        "AGE-SECRET-KEY-PQ-1" + "Q" * 58,  # bad checksum
        _bech32.encode("AGE-SECRET-KEY-PQ-", bytes(31)),
        _bech32.encode("AGE-SECRET-KEY-PQ-", bytes(33)),
    ],
    ids=["lower-case", "checksum", "31-bytes", "33-bytes"],
)
def test_malformed_identities_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError):
        age.parse_identity(text)


def test_identity_seed_must_be_32_bytes() -> None:
    with pytest.raises(KeyFormatError, match="32-byte seed"):
        age.HybridIdentity(bytes(31))


@pytest.mark.parametrize(
    "public_key",
    [
        bytes(1215),
        bytes(1217),
        b"\xff" * 1184 + bytes(32),  # ML-KEM coefficients out of range
    ],
    ids=["short", "long", "not-an-mlkem-key"],
)
def test_malformed_recipients_are_refused(public_key: bytes) -> None:
    with pytest.raises(KeyFormatError):
        age.HybridRecipient(public_key)
    with pytest.raises(KeyFormatError):
        age.parse_recipient(_bech32.encode("age1pq", public_key))


def test_files_of_keys_may_mix_the_kinds() -> None:
    identities = age.parse_identities(
        f"# post-quantum\n{IDENTITY.encode()}\n\n# classic\n{CLASSIC.encode()}\n"
    )
    assert identities == [IDENTITY, CLASSIC]
    recipients = age.parse_recipients(
        f"{IDENTITY.recipient}\n# a comment\n{CLASSIC.recipient}\n"
    )
    assert recipients == [IDENTITY.recipient, CLASSIC.recipient]


def test_bad_line_in_a_key_file_is_named_and_not_echoed() -> None:
    broken = IDENTITY.encode()[:-1] + ("Q" if IDENTITY.encode()[-1] != "Q" else "P")
    with pytest.raises(KeyFormatError) as excinfo:
        age.parse_identities(f"{CLASSIC.encode()}\n{broken}\n")
    assert str(excinfo.value) == "identity file line 2 is not an age identity"


# --- the stanza we write ------------------------------------------------------------


def test_stanza_has_one_argument_a_1120_byte_share_and_a_32_byte_body() -> None:
    stanza = _stanza()
    assert stanza.type == STANZA_TYPE == "mlkem768x25519"
    assert len(stanza.args) == 1
    assert len(_enc(stanza)) == 1120
    assert len(stanza.body) == 32
    assert IDENTITY.unwrap([stanza]) == FILE_KEY


def test_each_wrap_is_a_fresh_encapsulation() -> None:
    assert _enc(_stanza()) != _enc(_stanza())
    assert _stanza().body != _stanza().body


def test_hpke_info_is_the_spec_string() -> None:
    assert MLKEM768X25519_LABEL == b"age-encryption.org/mlkem768x25519"


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 64 * 1024 + 1])
def test_round_trip(size: int, armored: bool) -> None:
    plaintext = bytes(i % 251 for i in range(size))
    sealed = age.encrypt(plaintext, [IDENTITY.recipient], armored=armored)
    assert age.decrypt(sealed, [CLASSIC, IDENTITY]) == plaintext


def test_two_hybrid_recipients_each_open_the_file() -> None:
    other = age.HybridIdentity.generate()
    sealed = age.encrypt(b"shared", [IDENTITY.recipient, other.recipient])
    assert age.decrypt(sealed, [IDENTITY]) == b"shared"
    assert age.decrypt(sealed, [other]) == b"shared"


def test_kept_file_key_opens_a_hybrid_file() -> None:
    sealed, file_key = age.encrypt_keyed(b"note", [IDENTITY.recipient])
    assert age.decrypt_with_file_key(sealed, file_key) == b"note"


# --- labels: no classic recipient in a post-quantum file ---------------------------


def test_hybrid_recipient_carries_the_postquantum_label() -> None:
    assert age.HybridRecipient.labels == frozenset({"postquantum"})
    assert not hasattr(CLASSIC.recipient, "labels")


@pytest.mark.parametrize("hybrid_first", [True, False])
def test_hybrid_and_classic_recipients_cannot_seal_one_file(hybrid_first: bool) -> None:
    recipients: list[age.Recipient] = [IDENTITY.recipient, CLASSIC.recipient]
    if not hybrid_first:
        recipients.reverse()
    with pytest.raises(IncompatibleRecipientsError, match="incompatible recipients"):
        age.encrypt(b"x", recipients)
    out = io.BytesIO()
    with pytest.raises(IncompatibleRecipientsError):
        age.encrypt_stream(io.BytesIO(b"x"), out, recipients)
    assert out.getvalue() == b""  # refused before a byte is written


def test_hybrid_and_passphrase_cannot_seal_one_file() -> None:
    scrypt = age.ScryptRecipient(b"a passphrase", work_factor=10)
    with pytest.raises(IncompatibleRecipientsError):
        age.encrypt(b"x", [IDENTITY.recipient, scrypt])


def test_a_file_with_both_kinds_of_stanza_still_opens() -> None:
    # Labels bind encryption only (hybrid_and_x25519 is a "success" vector):
    # a header built by hand with both stanzas opens with either identity.
    file_key = bytes(16)
    stanzas = [*CLASSIC.recipient.wrap(file_key), *IDENTITY.recipient.wrap(file_key)]
    assert IDENTITY.unwrap(stanzas) == file_key
    assert CLASSIC.unwrap(stanzas) == file_key


# --- the stanzas we read: as strict as X25519's --------------------------------------


def _variant(name: str) -> _format.Stanza:
    good = _stanza()
    enc = _enc(good)
    b64 = _format.b64encode
    last = good.args[0][-1]
    variants = {
        "extra-argument": (good.args[0], "1234"),
        "no-argument": (),
        "short-share": (b64(enc[:-1]),),
        "long-share": (b64(enc + b"\x00"),),
        "padded-share": (good.args[0] + "=",),
        "non-canonical-share": (good.args[0][:-1] + chr(ord(last) + 1),),
    }
    return _format.Stanza(STANZA_TYPE, variants[name], good.body)


@pytest.mark.parametrize(
    "name",
    [
        "extra-argument",
        "no-argument",
        "short-share",
        "long-share",
        "padded-share",
        "non-canonical-share",
    ],
)
def test_malformed_stanza_is_a_header_failure(name: str) -> None:
    stanza = _variant(name)
    with pytest.raises(HeaderError):
        IDENTITY.unwrap([stanza])


@pytest.mark.parametrize("body_size", [0, 16, 31, 33, 48])
def test_body_of_the_wrong_size_is_a_header_failure(body_size: int) -> None:
    good = _stanza()
    stanza = _format.Stanza(STANZA_TYPE, good.args, bytes(body_size))
    with pytest.raises(HeaderError, match="body must be 32 bytes"):
        IDENTITY.unwrap([stanza])


@pytest.mark.parametrize("point", LOW_ORDER, ids=["zero", "one", "order-8", "p-1"])
def test_low_order_x25519_share_is_a_header_failure(point: bytes) -> None:
    good = _stanza()
    enc = _enc(good)[:1088] + point
    stanza = _format.Stanza(STANZA_TYPE, (_format.b64encode(enc),), good.body)
    with pytest.raises(HeaderError, match="low-order"):
        IDENTITY.unwrap([stanza])


def test_other_stanzas_are_ignored_and_a_wrong_key_is_no_match() -> None:
    sealed = age.encrypt(b"x", [age.HybridIdentity.generate().recipient])
    with pytest.raises(NoIdentityMatchError) as excinfo:
        age.decrypt(sealed, [IDENTITY, CLASSIC])
    assert excinfo.value.stanza_types == ["mlkem768x25519"]
    assert all(isinstance(e, IncorrectIdentityError) for e in excinfo.value.errors)
    with pytest.raises(NoIdentityMatchError) as excinfo:
        age.decrypt(age.encrypt(b"x", [CLASSIC.recipient]), [IDENTITY])
    assert excinfo.value.stanza_types == ["X25519"]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), bit=st.integers(0, 7))
def test_any_bit_flip_in_the_header_fails_typed(data: st.DataObject, bit: int) -> None:
    sealed = bytearray(age.encrypt(b"clinical note", [IDENTITY.recipient]))
    header_end = sealed.index(b"\n---") + len("\n--- ") + 43 + 1
    position = data.draw(st.integers(0, header_end - 1))
    sealed[position] ^= 1 << bit
    with pytest.raises((HeaderError, HeaderMacError, NoIdentityMatchError)):
        age.decrypt(bytes(sealed), [IDENTITY])


def test_stanza_lines_are_wrapped_at_64_columns() -> None:
    sealed = age.encrypt(b"x", [IDENTITY.recipient])
    header = sealed[: sealed.index(b"\n---") + 1].decode()
    arg_line = header.splitlines()[1]
    assert arg_line.startswith("-> mlkem768x25519 ")
    share = arg_line.split(" ")[2]
    assert len(base64.b64decode(share + "=" * (-len(share) % 4))) == 1120
    body_lines = header.splitlines()[2:]
    assert [len(line) for line in body_lines] == [43]
