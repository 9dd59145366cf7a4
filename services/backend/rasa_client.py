"""The one place rasa-x calls Rasa Open Source's HTTP API (docs/design.md §4).

Every call carries `?token=RASA_TOKEN`, has a timeout, and turns what went wrong into a
`RasaUnavailable` (Rasa could not be reached, or answered 5xx) or a `RasaRefused` (Rasa
understood and said no: bad training data, an unloadable model), each with Rasa's own message.
Routes turn either into a JSON error (`as_api_error`), so a caller learns the reason and never
sees a 500 for a fault of Rasa's.
"""

from __future__ import annotations

import os
import tempfile

import requests

from .errors import ApiError

YAML = "application/x-yaml"  # the content type Rasa's server checks for a YAML payload
CONNECT_TIMEOUT = 5
# Training moodbot-sized data takes minutes on two cores; large projects take hours. The read
# timeout is the longest silence we accept from Rasa, not the length of the training.
TRAIN_TIMEOUT = 6 * 3600
EVALUATION_TIMEOUT = 3600
MESSAGE_TIMEOUT = 60
STATUS_TIMEOUT = 10


class RasaError(Exception):
    def __init__(self, server: str, message: str, status: int | None = None):
        super().__init__(message)
        self.server, self.message, self.status = server, message, status


class RasaUnavailable(RasaError):
    """Rasa did not answer, or failed on its side (5xx)."""


class RasaRefused(RasaError):
    """Rasa answered 4xx: the request (data, model, token) is what it refuses."""


def as_api_error(exc: RasaError) -> ApiError:
    if isinstance(exc, RasaRefused):
        # Rasa understood and said no (a model it cannot load, data it cannot read): its answer, as a
        # gateway's error, since rasa-x made the request.
        return ApiError(502, f"{exc.server}: {exc.message}", "rasa_refused")
    return ApiError(503, f"{exc.server}: {exc.message}", "rasa_unavailable", {"Retry-After": "10"})


def _message(response: requests.Response) -> str:
    """Rasa's ErrorResponse is {"message", "reason", ...}; anything else is shown as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:2000]
    return str(body)[:500]


class RasaClient:
    def __init__(self, name: str, base_url: str, token: str):
        self.name = name  # "rasa-worker", "rasa-production": what error messages call it
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _request(self, method: str, path: str, timeout: float, *, params: dict | None = None, **kwargs):
        try:
            response = requests.request(method, f"{self.base_url}{path}", timeout=(CONNECT_TIMEOUT, timeout),
                                        params={"token": self.token, **(params or {})}, **kwargs)
        except requests.Timeout:
            raise RasaUnavailable(self.name, f"no answer within {timeout:g} s") from None
        except requests.ConnectionError as exc:
            # The exception's text holds the URL, and with it the token: name the host only.
            reason = type(exc.args[0]).__name__ if exc.args else "connection failed"
            raise RasaUnavailable(self.name, f"cannot connect to {self.base_url} ({reason})") from None
        if response.status_code >= 500:
            raise RasaUnavailable(self.name, _message(response), response.status_code)
        if response.status_code >= 400:
            raise RasaRefused(self.name, _message(response), response.status_code)
        return response

    def ping(self) -> str:
        """Rasa's root route (no token needed, none sent elsewhere): 'Hello from Rasa: <version>'."""
        return self._request("GET", "/", STATUS_TIMEOUT).text.strip()

    def active_trainings(self) -> int | None:
        """How many trainings the server runs now (Rasa's /status num_active_training_jobs); None when
        it cannot say: Rasa answers /status only with a model loaded (409 "No agent loaded" before)."""
        try:
            status = self._request("GET", "/status", STATUS_TIMEOUT).json()
        except RasaRefused as exc:
            if exc.status == 409:
                return None
            raise
        except ValueError:
            raise RasaUnavailable(self.name, "the /status answer is not JSON") from None
        return int(status.get("num_active_training_jobs") or 0)

    def train(self, payload: str, directory: str) -> str:
        """Train on `payload` (Rasa's one-document YAML); the model is streamed into a new file in
        `directory`, whose path is returned. The worker keeps no copy of it."""
        response = self._request(
            "POST", "/model/train", TRAIN_TIMEOUT, params={"save_to_default_model_directory": "false"},
            data=payload.encode(), headers={"Content-Type": YAML}, stream=True,
        )
        fd, path = tempfile.mkstemp(dir=directory, prefix=".trained-", suffix=".tar.gz")
        try:
            with os.fdopen(fd, "wb") as out, response:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
        except (requests.RequestException, OSError) as exc:
            os.unlink(path)
            raise RasaUnavailable(self.name, f"the model download broke off: {type(exc).__name__}") from None
        return path

    def load_model(self, url: str, token: str) -> None:
        """Make the server load the model at `url` (a model server route checking ?token=) once,
        without pulling it again later."""
        model_server = {"url": url, "token": token, "wait_time_between_pulls": 0}
        self._request("PUT", "/model", EVALUATION_TIMEOUT, json={"model_server": model_server})

    def test_intents(self, payload: str) -> dict:
        """Rasa's intent (and entity) evaluation of NLU data (YAML) with the model it has loaded."""
        response = self._request("POST", "/model/test/intents", EVALUATION_TIMEOUT, data=payload.encode(),
                                 headers={"Content-Type": YAML})
        return response.json()

    def send_message(self, path: str, body: dict, headers: dict | None = None) -> list:
        """A message to one of Rasa's input channels (`path` is its webhook); its direct answers."""
        response = self._request("POST", path, MESSAGE_TIMEOUT, json=body, headers=headers)
        try:
            return response.json()
        except ValueError:
            raise RasaUnavailable(self.name, "the answer is not JSON") from None


def worker(settings) -> RasaClient:
    return RasaClient("rasa-worker", settings.rasa_worker_host, settings.rasa_token)


def production(settings) -> RasaClient:
    return RasaClient("rasa-production", settings.rasa_production_host, settings.rasa_token)
