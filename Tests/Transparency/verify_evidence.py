"""An evidence-bundle verifier written from the C2SP and RFC texts alone, sharing no code with
the engine: signed-note (https://c2sp.org/signed-note), tlog-checkpoint
(https://c2sp.org/tlog-checkpoint), tlog-proof (https://c2sp.org/tlog-proof), RFC 6962 leaf and
node hashes and the RFC 9162 section 2.1.3.2 inclusion check. Ed25519 from `cryptography`.

    python3 verify_evidence.py BUNDLE_DIR VERIFIER_KEY_FILE
    python3 verify_evidence.py --every-byte-of FILE BUNDLE_DIR VERIFIER_KEY_FILE

Exit 0 and "OK ..." when every entry is proved in the signed tree, 1 with the reason otherwise.
With --every-byte-of, each byte of FILE (relative to the bundle) is flipped in turn and the
bundle verified: exit 0 when every flip was refused.
"""
import base64
import hashlib
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Refused(Exception):
    pass


def b64(text):
    """Standard base64 in its one canonical spelling (RFC 4648 section 3.5: padding bits zero)."""
    try:
        data = base64.b64decode(text, validate=True)
    except Exception as error:
        raise Refused(f"bad base64: {text!r}") from error
    if base64.b64encode(data).decode() != text:
        raise Refused(f"non-canonical base64: {text!r}")
    return data


def parse_verifier_key(text):
    # <name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>
    name, key_id, key = text.strip().split("+", 2)
    raw = b64(key)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Refused("not an Ed25519 verifier key")
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if computed.hex() != key_id:
        raise Refused("verifier key id does not match")
    return name, computed, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, name, key_id, public_key):
    if not note.endswith("\n") or "\n\n" not in note:
        raise Refused("not a signed note")
    split = note.rindex("\n\n")
    text = note[: split + 1]
    verified = False
    for line in note[split + 2 : -1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Refused("bad signature line")
        signer, signature = line[2:].split(" ")
        signature = b64(signature)
        if signer != name or signature[:4] != key_id:
            continue
        try:
            public_key.verify(signature[4:], text.encode())
        except InvalidSignature:
            raise Refused("signature does not verify")
        verified = True
    if not verified:
        raise Refused("no signature by the verifier key")
    return text


def parse_checkpoint(text, origin):
    lines = text.split("\n")
    if lines[0] != origin:
        raise Refused(f"checkpoint origin {lines[0]!r} is not {origin!r}")
    size = int(lines[1])
    if str(size) != lines[1]:
        raise Refused("bad tree size")
    root = b64(lines[2])
    if len(root) != 32:
        raise Refused("bad root")
    return size, root


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, path, root):
    # RFC 9162, section 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def parse_proof(text):
    head, checkpoint = text.split("\n\n", 1)
    lines = head.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise Refused("not a tlog-proof")
    lines = lines[1:]
    if lines and lines[0].startswith("extra "):
        lines = lines[1:]
    if not lines[0].startswith("index "):
        raise Refused("no index line")
    index = int(lines[0][6:])
    path = [b64(line) for line in lines[1:]]
    if any(len(h) != 32 for h in path):
        raise Refused("bad hash in audit path")
    return index, path, checkpoint


def verify(bundle, key_file):
    with open(key_file) as f:
        name, key_id, public_key = parse_verifier_key(f.read())
    with open(os.path.join(bundle, "checkpoint"), encoding="utf-8") as f:
        note = f.read()
    size, root = parse_checkpoint(open_note(note, name, key_id, public_key), name)
    with open(os.path.join(bundle, "entries.ndjson"), "rb") as f:
        data = f.read()
    if not data.endswith(b"\n"):
        raise Refused("entries.ndjson is truncated")
    import json

    count = 0
    for line in data[:-1].split(b"\n"):
        position = json.loads(line)["position"]
        with open(os.path.join(bundle, "proofs", f"{position - 1}.tlog-proof"), encoding="utf-8") as f:
            index, path, proof_note = parse_proof(f.read())
        if index != position - 1:
            raise Refused(f"proof index {index} is not {position - 1}")
        proof_size, proof_root = parse_checkpoint(open_note(proof_note, name, key_id, public_key), name)
        if (proof_size, proof_root) != (size, root):
            raise Refused("proof is against another checkpoint")
        leaf = hashlib.sha256(b"\x00" + line).digest()
        if not verify_inclusion(leaf, index, size, path, root):
            raise Refused(f"entry at position {position} is not in the tree")
        count += 1
    return f"OK {count} entries in {name} at size {size}"


REFUSALS = (Refused, ValueError, KeyError, OSError, UnicodeDecodeError, TypeError, IndexError)


def every_byte(bundle, key_file, relative):
    """Flips each byte of one file of the bundle in turn (XOR 0x04) and verifies: returns the
    offsets whose flip still verified (there must be none)."""
    path = os.path.join(bundle, relative)
    with open(path, "rb") as f:
        original = f.read()
    accepted = []
    try:
        for offset in range(len(original)):
            flipped = bytearray(original)
            flipped[offset] ^= 0x04
            with open(path, "wb") as f:
                f.write(flipped)
            try:
                verify(bundle, key_file)
                accepted.append(offset)
            except REFUSALS:
                pass
    finally:
        with open(path, "wb") as f:
            f.write(original)
    return len(original), accepted


if __name__ == "__main__":
    if sys.argv[1] == "--every-byte-of":
        size, accepted = every_byte(sys.argv[3], sys.argv[4], sys.argv[2])
        print(f"FLIPPED {size} bytes, ACCEPTED {accepted}")
        sys.exit(1 if accepted else 0)
    try:
        print(verify(sys.argv[1], sys.argv[2]))
    except REFUSALS as error:
        print(f"REFUSED: {error}")
        sys.exit(1)
