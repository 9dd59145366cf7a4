"""A stand-in for Rasa's HTTP API, for the failure paths real Rasa will not produce on demand:
a worker that refuses data, answers 500, hangs, or trains slowly enough to see two requests
overlap. It checks the token and the content type the way Rasa's server does, and records what
it was sent. Every behaviour is also shown against real Rasa in tests/e2e/test_closing_the_loop.py.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import yaml


def model_archive(version: str = "3.6.21") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        metadata = json.dumps({"trained_at": "2026-12-02T12:00:00", "rasa_open_source_version": version}).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(metadata)
        archive.addfile(info, io.BytesIO(metadata))
    return buffer.getvalue()


def nlu_examples(nlu_yaml: str) -> list[tuple[str, str]]:
    """(text, intent) of each example of Rasa NLU YAML: `examples` as a block of "- " lines, or as
    a list of {text, metadata} (the form for examples with metadata)."""
    examples = []
    for block in yaml.safe_load(nlu_yaml).get("nlu") or []:
        if "intent" not in block:
            continue
        given = block.get("examples") or ""
        if isinstance(given, str):
            texts = [line.strip().removeprefix("- ").strip() for line in given.splitlines()]
        else:
            texts = [item["text"].strip() for item in given]
        examples += [(text, block["intent"]) for text in texts if text]
    return examples


def intent_evaluation(nlu_yaml: str, predicted: dict[str, str]) -> dict:
    """What Rasa 3.6's POST /model/test/intents answers (rasa.nlu.test.run_evaluation with
    report_as_dict): each example predicted as its own intent unless `predicted` maps its text to
    another; sklearn's classification report over the target labels; the misclassified examples."""
    results = [(text, intent, predicted.get(text, intent)) for text, intent in nlu_examples(nlu_yaml)]
    targets = Counter(t for _, t, _ in results)
    predictions = Counter(p for _, _, p in results)
    hits = Counter(t for _, t, p in results if t == p)
    report: dict = {}
    for label, support in targets.items():
        precision = hits[label] / predictions[label] if predictions[label] else 0.0
        recall = hits[label] / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {"precision": precision, "recall": recall, "f1-score": f1, "support": support}
    total = len(results)
    accuracy = sum(hits.values()) / total
    per_label = [report[label] for label in targets]
    for name, weight in (("macro avg", lambda r: 1 / len(per_label)), ("weighted avg", lambda r: r["support"] / total)):
        report[name] = {k: sum(weight(r) * r[k] for r in per_label) for k in ("precision", "recall", "f1-score")}
        report[name]["support"] = total
    if set(predictions) <= set(targets):
        report["accuracy"] = accuracy
    else:  # sklearn's micro average replaces accuracy when a prediction is no target label
        report["micro avg"] = {"precision": accuracy, "recall": accuracy, "f1-score": accuracy, "support": total}
    errors = [{"text": text, "intent": target, "intent_prediction": {"name": prediction, "confidence": 0.61}}
              for text, target, prediction in results if target != prediction]
    intents = {
        "predictions": [{"text": text, "intent": target, "predicted": prediction, "confidence": 0.61 if target != prediction else 0.97}
                        for text, target, prediction in results],
        "report": report,
        "precision": report["weighted avg"]["precision"],
        "f1_score": report["weighted avg"]["f1-score"],
        "accuracy": accuracy,
        "errors": errors,
    }
    # Rasa leaves an evaluation None when the model has no component for it (no entity extractor here).
    return {"intent_evaluation": intents, "entity_evaluation": None, "response_selection_evaluation": None}


class StandIn:
    """mode: "train" (a model after `delay` s), "refuse" (400 with Rasa's error shape), "crash" (500),
    "hang" (no answer until released). POST /model/test/intents evaluates the NLU data it is sent,
    predicting the texts in `predicted` as the intents it maps them to (see intent_evaluation)."""

    def __init__(self, token: str, port: int = 0):
        self.token = token
        self.predicted: dict[str, str] = {}
        self.mode = "train"
        self.delay = 0.0
        self.requests: list[dict] = []
        self.active = 0
        self.most_active = 0
        self.release = threading.Event()
        self.loaded = False  # a model loaded (PUT /model): /status answers only then, as Rasa's does
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlparse(self.path)
                if url.path == "/":
                    self._send(200, b"Hello from Rasa: 3.6.21", "text/plain")
                elif url.path == "/status" and parse_qs(url.query).get("token") == [stand_in.token]:
                    # Rasa's /status answers only with a model loaded (ensure_loaded_agent).
                    if not stand_in.loaded:
                        error = {"status": "failure", "reason": "Conflict", "code": 409, "message":
                                 "No agent loaded. To continue processing, a model of a trained agent needs to be loaded."}
                        return self._send(409, json.dumps(error).encode())
                    self._send(200, json.dumps({"model_file": "loaded.tar.gz", "model_id": "stand-in",
                                                "num_active_training_jobs": stand_in.active}).encode())
                else:
                    self._send(404, b"{}")

            def do_PUT(self):
                # PUT /model: "refuse" answers as Rasa does when the model cannot be loaded.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.requests.append({"path": urlparse(self.path).path, "method": "PUT"})
                if stand_in.mode == "refuse":
                    error = {"status": "failure", "reason": "BadRequest", "code": 400,
                             "message": "Agent with name 'None' could not be loaded."}
                    return self._send(400, json.dumps(error).encode())
                stand_in.loaded = True
                self._send(204, b"")

            def do_POST(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                stand_in.requests.append({"path": url.path, "query": query, "body": body,
                                          "content_type": self.headers.get("Content-Type")})
                if query.get("token") != [stand_in.token]:
                    return self._send(401, json.dumps({"message": "User is not authenticated."}).encode())
                if url.path == "/model/test/intents":
                    return self._send(200, json.dumps(intent_evaluation(body, stand_in.predicted)).encode())
                if url.path != "/model/train":
                    return self._send(404, b"{}")
                with stand_in._lock:
                    stand_in.active += 1
                    stand_in.most_active = max(stand_in.most_active, stand_in.active)
                try:
                    stand_in._answer(self)
                finally:
                    with stand_in._lock:
                        stand_in.active -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, handler) -> None:
        if self.mode == "refuse":
            error = {"version": "3.6.21", "status": "failure", "reason": "BadRequest",
                     "message": "The request body does not contain valid YAML. Error: intents missing", "code": 400}
            return handler._send(400, json.dumps(error).encode())
        if self.mode == "crash":
            error = {"status": "failure", "reason": "TrainingError", "code": 500,
                     "message": "An unexpected error occurred during training. Error: out of memory"}
            return handler._send(500, json.dumps(error).encode())
        if self.mode == "hang":
            self.release.wait(120)
        time.sleep(self.delay)
        handler._send(200, model_archive(), "application/octet-stream", {"filename": "model.tar.gz"})

    def trainings(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/model/train"]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
