"""The event service: Rasa events from RabbitMQ into PostgreSQL, each stored exactly once.

`python -m services.event_service` (see __main__.py); the pieces are parsing.py (message →
event or dead-letter reason), aggregate.py (a batch of new events → what they change, pure),
store.py (one transaction per batch), event_table.py and pg_text.py (the rows as COPY and array
text), consumer.py (pika) and workers.py (the worker processes and their supervisor).
"""
