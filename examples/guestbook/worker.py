"""The worker: every few seconds, records how many entries there are (a heartbeat that shows
the worker, the database and the network all work). Stops cleanly on SIGTERM."""

import signal
import threading

from db import connection, wait_for_database

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

if __name__ == "__main__":
    wait_for_database()
    print("worker started")
    while not stop.is_set():
        try:
            with connection() as conn:
                conn.execute(
                    "INSERT INTO worker_heartbeat (id, beat_at, entries) "
                    "SELECT 1, now(), count(*) FROM entries "
                    "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, "
                    "entries = excluded.entries")
        except Exception as exc:  # keep going: the database may be restarting
            print(f"heartbeat failed: {exc}")
        stop.wait(2)
    print("worker stopped")
