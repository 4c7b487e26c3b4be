"""Checks of the deployment as it ships: the image and docker-compose.yml, run by a container engine."""
