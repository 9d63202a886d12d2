"""The release command: bring the schema up to date. Safe to run again (idempotent)."""

from db import connection, wait_for_database

STEPS = [
    """CREATE TABLE IF NOT EXISTS entries (
           id bigserial PRIMARY KEY,
           name text NOT NULL,
           message text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS worker_heartbeat (
           id int PRIMARY KEY,
           beat_at timestamptz NOT NULL,
           entries bigint NOT NULL)""",
]

if __name__ == "__main__":
    wait_for_database()
    with connection() as conn:
        for step in STEPS:
            conn.execute(step)
    print(f"migrated: {len(STEPS)} steps")
