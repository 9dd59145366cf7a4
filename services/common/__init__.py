"""What every service shares: config from the environment, the database engine, AMQP
parameters, redacting JSON logs, the health server, the backoff helper, and the descriptions
of the schema's derived rows (facets.py: the facet tables; counters.py: the event counters)
and of a message text's hash (text_hash.py)."""
