"""Several servers through Docker Swarm: the swarm itself (swarm.py), the app's services
(services.py), and the commands that change a cluster's members (nodes.py)."""
