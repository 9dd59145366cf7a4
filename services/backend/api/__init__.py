"""The API blueprints, one per area of the Rasa X API."""
