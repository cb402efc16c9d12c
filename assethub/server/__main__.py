"""``python -m assethub.server``: run the server with settings from the environment."""

from assethub.server import serve

serve()
