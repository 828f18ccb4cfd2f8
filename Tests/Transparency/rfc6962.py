"""RFC 6962 Merkle trees written from the RFC's text alone (section 2.1), for known-answer tests.

Shares no code with the engine. `python3 rfc6962.py N` prints, as JSON, for the entries
"entry 0" ... "entry N-1" (UTF-8) and every tree size 1..N: the root (MTH), the audit path
(PATH) of every leaf, and the consistency proof (PROOF) from every smaller size, all in hex.
"""
import hashlib
import json
import sys


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries):
    """MTH(D[n]) of section 2.1."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(entries[0])
    k = largest_power_of_two_below(n)
    return node_hash(mth(entries[:k]), mth(entries[k:]))


def path(m, entries):
    """PATH(m, D[n]) of section 2.1.1."""
    n = len(entries)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return path(m, entries[:k]) + [mth(entries[k:])]
    return path(m - k, entries[k:]) + [mth(entries[:k])]


def subproof(m, entries, b):
    """SUBPROOF(m, D[n], b) of section 2.1.2."""
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return subproof(m, entries[:k], b) + [mth(entries[k:])]
    return subproof(m - k, entries[k:], False) + [mth(entries[:k])]


def proof(m, entries):
    """PROOF(m, D[n]) of section 2.1.2, for 0 < m < n."""
    return subproof(m, entries, True)


def main():
    count = int(sys.argv[1])
    entries = [f"entry {i}".encode() for i in range(count)]
    trees = []
    for n in range(1, count + 1):
        tree = entries[:n]
        trees.append({
            "size": n,
            "root": mth(tree).hex(),
            "paths": [[h.hex() for h in path(m, tree)] for m in range(n)],
            "consistency": {str(m): [h.hex() for h in proof(m, tree)] for m in range(1, n)},
        })
    json.dump(trees, sys.stdout)


if __name__ == "__main__":
    main()
