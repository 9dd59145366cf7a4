import json
import urllib.error
import urllib.request

from services.common.health import HealthServer


def _get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_routes_answer_with_their_status_and_json():
    state = {"ready": False}

    def health():
        return (200, {"status": "ok"}) if state["ready"] else (503, {"status": "waiting", "reason": "broker down"})

    def broken():
        raise RuntimeError("database gone")

    server = HealthServer({"/health": health, "/broken": broken}, port=0, host="127.0.0.1").start()
    try:
        assert _get(server.port, "/health") == (503, {"status": "waiting", "reason": "broker down"})
        state["ready"] = True
        assert _get(server.port, "/health?verbose=1") == (200, {"status": "ok"})
        assert _get(server.port, "/broken") == (503, {"status": "error", "reason": "database gone"})
        assert _get(server.port, "/nope")[0] == 404
    finally:
        server.stop()
