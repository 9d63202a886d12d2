"""Commands about the Docker engine itself (version, images). Builders only: no I/O."""

from __future__ import annotations

from dockyard.host.command import Command, change, query


def server_version() -> Command:
    return query(["docker", "version", "--format={{.Server.Version}}"],
                 "ask the Docker engine for its version (also proves we may use it)")


def image_exists(image: str) -> Command:
    return query(["docker", "image", "inspect", "--format={{.Id}}", "--", image],
                 f"check whether {image} is already on the server")


def pull(image: str) -> Command:
    return change(["docker", "pull", "--", image],
                  f"{image} is not on the server yet: download it once; later runs reuse it")


def container_exists(name: str) -> Command:
    return query(["docker", "ps", "-a", f"--filter=name=^{name}$", "--format={{.Names}}"],
                 f"check whether the {name} container exists")
