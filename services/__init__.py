"""The thin services of rasax-deploy: rasa-x backend, event service, db migration."""

__version__ = "0.1.0"
