"""The API blueprints, one per area of the Rasa X API."""

from flask import jsonify


def with_total(items: list, total: int):
    """A JSON list with the total before paging in X-Total-Count, as Rasa X answered lists."""
    response = jsonify(items)
    response.headers["X-Total-Count"] = str(total)
    return response
