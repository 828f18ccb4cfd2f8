"""The attack the hash chain alone cannot see, as someone with write access to the file would
script it: given the log's events as exported (after editing the file), recompute every link of
the chain (ARCHITECTURE.md, "Hash chain and verify") and print the SQL that rewrites each row's
`chain_check` and the head in `meta`.

    python3 rewrite_chain.py EVENTS_NDJSON > rewrite.sql

Each exported line is the event's canonical JSON with `position` and `version` merged in; the
chain hashes the canonical JSON without them, so the two members are cut out of the line's top
level, byte for byte.
"""
import hashlib
import sys


def top_level_members(line: bytes):
    """(start, end, key) of each top-level member of a JSON object without whitespace."""
    members, i, depth, start, in_string = [], 1, 0, 1, False
    while i < len(line) - 1:
        c = line[i : i + 1]
        if in_string:
            if c == b"\\":
                i += 1
            elif c == b'"':
                in_string = False
        elif c == b'"':
            in_string = True
        elif c in (b"{", b"["):
            depth += 1
        elif c in (b"}", b"]"):
            depth -= 1
        elif c == b"," and depth == 0:
            members.append(start)
            start = i + 1
        i += 1
    members.append(start)
    bounds = []
    for index, begin in enumerate(members):
        end = members[index + 1] - 1 if index + 1 < len(members) else len(line) - 1
        key = line[begin + 1 : line.index(b'"', begin + 1)]
        bounds.append((begin, end, key))
    return bounds


def main():
    previous = bytes(32)
    position = 0
    with open(sys.argv[1], "rb") as events:
        for line in events:
            line = line.rstrip(b"\n")
            members = top_level_members(line)
            values = {key: line[begin:end] for begin, end, key in members}
            position = int(values[b"position"].split(b":", 1)[1])
            version = int(values[b"version"].split(b":", 1)[1])
            kept = [line[begin:end] for begin, end, key in members if key not in (b"position", b"version")]
            body = b"{" + b",".join(kept) + b"}"
            link = hashlib.sha256(
                previous + position.to_bytes(8, "big") + version.to_bytes(8, "big") + body
            ).digest()
            print(f"UPDATE events SET chain_check = x'{link[:8].hex()}' WHERE position = {position};")
            previous = link
    print(f"UPDATE meta SET value = {position} WHERE key = 'head_position';")
    print(f"UPDATE meta SET value = x'{previous.hex()}' WHERE key = 'head_hash';")


if __name__ == "__main__":
    main()
