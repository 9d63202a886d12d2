"""Deploying a docker-compose file: reading it as docker compose does (load.py) and saying
it in Dockyard's terms (translate.py)."""
