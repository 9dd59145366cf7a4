"""rasa-x: the Flask API behind the web UI, the model server and the config endpoint of Rasa OSS.

`create_app` is the gunicorn app factory; `python -m services.backend` serves it on SELF_PORT.
"""

from .app import create_app

__all__ = ["create_app"]
