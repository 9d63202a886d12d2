"""Scheduled jobs ([cron.NAME]): when they run next, and what their runs left on the server."""
