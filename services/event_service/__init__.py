"""The event service: Rasa events from RabbitMQ into PostgreSQL, each stored exactly once.

`python -m services.event_service` (see __main__.py); the pieces are parsing.py (message →
event or dead-letter reason), store.py (one transaction per batch) and consumer.py (pika).
"""
