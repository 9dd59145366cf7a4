"""One-container mode: the migrator, the event service and the backend under one supervisor."""
