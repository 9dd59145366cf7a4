"""Every route: the access rule the OpenAPI document states is the one enforced, and no input,
however malformed, makes a 500."""

from __future__ import annotations

import re
import time

import jwt
import pytest

from services.backend.api.openapi import ROUTES, document
from services.backend.keys import generate_key_pair

from .conftest import bearer

SAMPLES = {"sender_id": "alice", "timestamp": "1.5", "tag_id": "999999", "username": "no-such-user", "name": "no-such-model", "tag": "production",
           "example_id": "999999", "block_id": "999999", "log_id": "999999", "job_id": "999999"}
FOREIGN_KEY = generate_key_pair().private_pem  # a key that is not ours
PROTECTED = [r for r in ROUTES if r.access not in ("public", "token")]
WITH_PERMISSION = [r for r in PROTECTED if r.access != "authenticated"]


def _url(path: str, samples=SAMPLES) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], path)


def _call(client, route, **kwargs):
    return client.open(_url(route.path), method=route.method, **kwargs)


def test_openapi_document_matches_the_url_map(app, client, admin):
    served = client.get("/api/openapi.json", headers=admin).json
    documented = {(method.upper(), path) for path, ops in served["paths"].items() for method in ops}
    assert served == document()
    actual = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        actual |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == actual


def test_each_documented_permission_is_the_one_the_view_checks(app):
    views = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            views[(method, path)] = app.view_functions[rule.endpoint]
    for route in ROUTES:
        view = views[(route.method, route.path)]
        declared = getattr(view, "permission", "unprotected")
        if route.access in ("public", "token"):
            assert declared == "unprotected", route
        else:
            assert declared == (None if route.access == "authenticated" else route.access), route


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
def test_missing_bad_and_expired_credentials_get_401(client, app, route):
    keys = app.extensions["rasax"].keys
    now = int(time.time())
    payload = {"user": {"username": "admin", "roles": ["admin"]}, "username": "admin"}
    expired = jwt.encode({**payload, "iat": now - 9 * 3600, "exp": now - 3600}, keys.private_pem, algorithm="RS256")
    foreign = jwt.encode({**payload, "iat": now, "exp": now + 60}, FOREIGN_KEY, algorithm="RS256")
    unsigned = jwt.encode({**payload, "iat": now, "exp": now + 60}, None, algorithm="none")
    for headers, query in (
        ({}, ""),
        ({"Authorization": "Bearer not-a-jwt"}, ""),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, ""),
        (bearer(expired), ""),
        (bearer(foreign), ""),
        (bearer(unsigned), ""),
        ({}, "?api_token=wrong"),
    ):
        response = client.open(_url(route.path) + query, method=route.method, headers=headers)
        assert response.status_code == 401, (headers, query, response.json)
        assert set(response.json) == {"message", "reason"}


def test_an_expired_token_says_so(client, app):
    keys = app.extensions["rasax"].keys
    now = int(time.time())
    token = jwt.encode({"user": {"username": "admin"}, "iat": now - 100, "exp": now - 10}, keys.private_pem, algorithm="RS256")
    assert client.get("/api/conversations", headers=bearer(token)).json["reason"] == "token_expired"


@pytest.fixture(scope="module")
def chat_guest(client_module, tokens):
    token = client_module.put("/api/chatToken", json={"bot_name": "moodbot"}, headers=bearer(tokens["admin"])).json["chat_token"]
    response = client_module.post("/api/auth/jwt", json={"chat_token": token})
    assert response.status_code == 200
    return response.json["access_token"]


@pytest.fixture(scope="module")
def client_module(app):
    return app.test_client()


@pytest.mark.parametrize("route", WITH_PERMISSION, ids=lambda r: f"{r.method} {r.path}")
def test_roles_without_the_permission_get_403(client, tokens, chat_guest, route):
    from services.backend.auth import PERMISSIONS

    for role, token in (("guest", tokens["guest"]), ("chat guest", chat_guest), *((r, tokens[r]) for r in ("tester", "annotator"))):
        granted = PERMISSIONS.get(role if role != "chat guest" else "guest")
        if route.access in granted or "*" in granted:
            continue
        response = _call(client, route, headers=bearer(token))
        assert response.status_code == 403, (role, response.json)
        assert response.json["reason"] == "forbidden"


def test_api_token_authenticates_like_a_jwt(client, admin):
    api_token = client.get("/api/user", headers=admin).json["api_token"]
    response = client.get(f"/api/conversations?api_token={api_token}")
    assert response.status_code == 200 and len(response.json) > 0


def test_a_chat_guest_jwt_is_rs256_with_the_published_key(client, chat_guest):
    key = client.get("/api/version").json["keys"][0]
    assert key["alg"] == "RS256"
    claims = jwt.decode(chat_guest, key["key"], algorithms=["RS256"])
    assert claims["user"]["roles"] == ["guest"]
    assert 8 * 3600 - 5 <= claims["exp"] - claims["iat"] <= 8 * 3600
    assert client.get("/api/user", headers=bearer(chat_guest)).json["roles"] == ["guest"]
    assert client.post("/api/auth/jwt", json={"chat_token": "wrong"}).status_code == 401


JUNK_BODIES = [
    {"data": "{not json", "content_type": "application/json"},
    {"json": ["a", "list"]},
    {"json": {"username": 5, "password": [], "roles": {"a": 1}, "review_status": 3, "intent": None, "value": 7,
              "lifetime": "x", "name": 4, "chat_token": {}, "old_password": 1, "new_password": "short", "color": 1}},
    {"json": {"username": "x" * 5000, "password": "y" * 5000, "roles": ["emperor"], "intent": "", "lifetime": 1e308}},
    {"data": b"\xff\xfe\x00garbage", "content_type": "multipart/form-data; boundary=zzz"},
]  # fmt: skip
JUNK_QUERIES = [
    "limit=-1&offset=abc", "start=nan&until=inf", "minimumConfidence=1e999&maximumNluConfidence=x",
    "is_flagged=maybe&in_training_data=2", "review_status=bogus&tags_any=x,y", "slots=:1&slots=a:{bad",
    "limit=99999999999999999999", "text=" + "a" * 2000, "minimumUserMessages=9223372036854775808",
    "sort_by_confidence=perhaps", "token=%00", "api_token=%00",
]  # fmt: skip
JUNK_SAMPLES = {"sender_id": "no-such-conversation", "timestamp": "not-a-time", "tag_id": "abc", "username": "no-such-user",
                "name": "no-such-model", "tag": "no such tag", "example_id": "abc", "block_id": "-1", "log_id": "1e3",
                "job_id": "abc"}  # fmt: skip


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_malformed_input_gets_a_4xx_json_never_a_500(client, admin, route):
    url = _url(route.path, JUNK_SAMPLES)
    for query in JUNK_QUERIES:
        response = client.open(f"{url}?{query}", method=route.method, headers=admin)
        assert response.status_code < 500, (query, response.json)
        if response.status_code >= 400:
            assert set(response.json) == {"message", "reason"}
    if route.method in ("POST", "PUT", "PATCH"):
        for body in JUNK_BODIES:
            response = client.open(url, method=route.method, headers=admin, **body)
            assert response.status_code < 500, (body, response.json)
            if response.status_code >= 400:
                assert set(response.json) == {"message", "reason"}


def test_typical_bad_requests_are_400_with_a_reason(client, admin):
    assert client.get("/api/conversations?limit=abc", headers=admin).json == {
        "message": "'limit' must be a whole number, got 'abc'",
        "reason": "bad_request",
    }
    assert client.get("/api/conversations?start=%00", headers=admin).status_code == 400
    assert client.post("/api/auth", data="{", content_type="application/json").status_code == 400
    assert client.get("/api/no-such-route", headers=admin).json["reason"] == "not_found"
    assert client.delete("/api/health").status_code == 405
    too_big = client.patch("/api/user", json={"data": "x" * 2**20}, headers=admin)
    assert too_big.status_code == 413 and too_big.json["reason"] == "body_too_large"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.access == "token"], ids=lambda r: f"{r.method} {r.path}")
def test_token_routes_want_rasa_x_token_not_a_user_credential(client, admin, route, settings):
    api_token = client.get("/api/user", headers=admin).json["api_token"]
    for query, headers in (("", {}), ("?token=wrong", {}), ("", admin), (f"?api_token={api_token}", {})):
        response = client.open(_url(route.path) + query, method=route.method, headers=headers)
        assert response.status_code == 401 and response.json["reason"] == "invalid_token", (query, headers)
    # With the right token the model server answers 404 (no model has the tag), /api/config 200.
    ok = client.open(_url(route.path) + f"?token={settings.rasa_x_token}", method=route.method)
    assert ok.status_code in (200, 404) and ok.status_code != 401
