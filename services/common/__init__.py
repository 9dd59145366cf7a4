"""What every service shares: config from the environment, the database engine, AMQP
parameters, redacting JSON logs, the health server and the backoff helper."""
