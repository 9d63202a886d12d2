"""`dockyard dashboard`: a local web page about the server, read over SSH (no server part)."""
