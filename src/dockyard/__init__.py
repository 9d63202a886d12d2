"""Dockyard: deploy Dockerized apps to your own server, with every step visible."""

__version__ = "0.1.0"
