"""Accessories: services next to an app (PostgreSQL, Redis, any image with a volume), their
backups and scheduled backups."""
