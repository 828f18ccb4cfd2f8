"""The Python peer of `make bench` (issue 6): the `eventsourcing` library (PyPI, pinned in the
Makefile) appending the same events with its SQLite persistence, batched, and replaying them.

    python peer.py CORPUS DB
    python peer.py CORPUS postgres://USER:PASSWORD@HOST:PORT/DATABASE

With a PostgreSQL URL (issue 19) the same run uses `eventsourcing[postgres]`'s application
recorder on that server instead (its table dropped first): the row the engine's PostgreSQL
append is measured against, on the same server.

CORPUS has one event per line: stream \\t version \\t type \\t json. Each line becomes a domain
event (a `DomainEvent` dataclass carrying the event's fields; building them is not timed), and
the timed append is what an eventsourcing Application does when it saves: the mapper turns each
event into a stored event (JSON transcoding) and the application recorder inserts 1000 of them
per call (one transaction, events table plus notification log). Replay reads the notification
log in pages of 1000 and maps each stored event back to a domain event. Prints one line of
key=value pairs like the C baseline.
"""
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class TicketEvent(DomainEvent):
    """One ticket event: its type and the rest of its fields as the engine's JSON has them."""
    type: str
    data: dict


def main() -> None:
    corpus, path = sys.argv[1], sys.argv[2]
    events = []
    with open(corpus, "rb") as file:
        for line in file:
            stream, version, kind, payload = line.rstrip(b"\n").split(b"\t", 3)
            data = json.loads(payload)
            events.append(TicketEvent(
                originator_id=uuid.uuid5(uuid.NAMESPACE_URL, stream.decode()), originator_version=int(version),
                timestamp=datetime.fromtimestamp(data["occurredAt"] / 1e6, timezone.utc), type=kind.decode(), data=data))
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper = Mapper(transcoder=transcoder)
    recorder = postgres_recorder(path) if path.startswith("postgres://") else sqlite_recorder(path)

    # Rates over the whole run and its first and last tenth, measured at batch boundaries.
    tenth = max(1, len(events) // 10)
    marks = [(0, time.perf_counter())]
    for index in range(0, len(events), 1000):
        recorder.insert_events([mapper.to_stored_event(event) for event in events[index:index + 1000]])
        marks.append((min(index + 1000, len(events)), time.perf_counter()))
    start, end = marks[0][1], marks[-1][1]
    seconds = end - start
    first = next(mark for mark in marks if mark[0] >= tenth)
    first10 = first[0] / (first[1] - start)
    last = [mark for mark in marks if mark[0] <= len(events) - tenth][-1]
    last10 = (len(events) - last[0]) / (end - last[1])

    replay_start = time.perf_counter()
    replayed = 0
    position = 1
    while True:
        page = recorder.select_notifications(start=position, limit=1000)
        if not page:
            break
        for notification in page:
            mapper.to_domain_event(notification)
        replayed += len(page)
        position = page[-1].id + 1
    replay_seconds = time.perf_counter() - replay_start
    print(f"events={len(events)} seconds={seconds:.3f} rate={len(events) / seconds:.0f} first10={first10:.0f} "
          f"last10={last10:.0f} replayed={replayed} replay_seconds={replay_seconds:.3f} "
          f"replay_rate={replayed / replay_seconds:.0f}")


def sqlite_recorder(path: str) -> SQLiteApplicationRecorder:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(path))
    recorder.create_table()
    return recorder


def postgres_recorder(url: str):
    # Imported here: the SQLite run needs no PostgreSQL driver.
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
    parts = urlsplit(url)
    datastore = PostgresDatastore(
        dbname=unquote(parts.path.lstrip("/")), host=parts.hostname, port=parts.port or 5432,
        user=unquote(parts.username or ""), password=unquote(parts.password or ""))
    recorder = PostgresApplicationRecorder(datastore, events_table_name="bench_stored_events")
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_stored_events")
    recorder.create_table()
    return recorder


if __name__ == "__main__":
    main()
