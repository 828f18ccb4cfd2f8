"""Loads a ticketlog CSV export with pandas and with duckdb, and an SQLite export with duckdb's
sqlite scanner-free path (Python's sqlite3), and prints what each tool saw as one JSON object.

Usage: python load_export.py CSV_DIRECTORY SQLITE_FILE
The Swift test compares these numbers with the log's own."""
import json
import sqlite3
import sys

import duckdb
import pandas as pd

csv_dir, sqlite_file = sys.argv[1], sys.argv[2]

events = pd.read_csv(f"{csv_dir}/events.csv")
facts = pd.read_csv(f"{csv_dir}/ticket_facts.csv")
occurred = pd.to_datetime(events["occurred_at"], utc=True, format="ISO8601")

con = duckdb.connect()
duck_events = con.execute(f"SELECT count(*), count(DISTINCT stream) FROM read_csv_auto('{csv_dir}/events.csv')").fetchone()
duck_types = dict(con.execute(
    f"SELECT type, count(*) FROM read_csv_auto('{csv_dir}/events.csv') GROUP BY type").fetchall())
duck_text = con.execute(
    f"SELECT text FROM read_csv_auto('{csv_dir}/events.csv') WHERE position = 1").fetchone()[0]
duck_response = con.execute(
    f"SELECT median(first_agent_response_seconds) FROM read_csv_auto('{csv_dir}/ticket_facts.csv')").fetchone()[0]

lite = sqlite3.connect(sqlite_file)
lite_events, lite_tickets = lite.execute("SELECT count(*), count(DISTINCT stream) FROM events").fetchone()
lite_messages = lite.execute("SELECT sum(messages) FROM ticket_facts").fetchone()[0]

print(json.dumps({
    "pandas_events": int(len(events)),
    "pandas_tickets": int(events["stream"].nunique()),
    "pandas_messages_posted": int((events["type"] == "message.posted").sum()),
    "pandas_first_position_text": events.loc[events["position"] == 1, "text"].iloc[0] if (events["position"] == 1).any() else None,
    "pandas_time_span_seconds": float((occurred.max() - occurred.min()).total_seconds()),
    "pandas_facts": int(len(facts)),
    "pandas_median_first_response": float(facts["first_agent_response_seconds"].median()),
    "duckdb_events": int(duck_events[0]),
    "duckdb_tickets": int(duck_events[1]),
    "duckdb_types": {k: int(v) for k, v in duck_types.items()},
    "duckdb_first_position_text": duck_text,
    "duckdb_median_first_response": float(duck_response),
    "sqlite_events": int(lite_events),
    "sqlite_tickets": int(lite_tickets),
    "sqlite_messages": int(lite_messages),
}))
