"""The web UI: the single-page app built from frontend/ (deploy/ui_build.py) into ui/dist of
this package, which the wheel and so the project image carry. `/` and every client route
(`/conversations?intent=greet`, `/models`, ...) answer the app's index.html, which then asks
the API; files of the build (`/assets/index-<hash>.js`) are served as they are. Paths under
/api are never the UI's: an unknown one stays the API's JSON 404.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.routing import PathConverter

from ..errors import ApiError

DIST = Path(__file__).resolve().parent.parent / "ui" / "dist"
# Vite names every built asset after its content: it may be cached for good. index.html names
# the current assets and must be fetched again each time.
IMMUTABLE = "public, max-age=31536000, immutable"

bp = Blueprint("ui", __name__)


class _PageConverter(PathConverter):
    """A path that is not under /api, so that the API's own 404 and 405 answers stay as they are."""

    regex = r"(?!api(?:/|$))[^/].*?"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("ui_page", _PageConverter))


def _index():
    if not (DIST / "index.html").is_file():
        raise ApiError(503, "the web UI is not built in this installation (deploy/ui_build.py builds it into "
                       "services/backend/ui/dist); the API under /api works without it", "ui_not_built")
    response = send_from_directory(DIST, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def index():
    return _index()


@bp.get("/<ui_page:name>")
def page(name: str):
    if (DIST / name).is_file() and not name.endswith("index.html"):
        # send_from_directory refuses paths that leave DIST (404).
        response = send_from_directory(DIST, name)
        if name.startswith("assets/"):
            response.headers["Cache-Control"] = IMMUTABLE
        return response
    return _index()
