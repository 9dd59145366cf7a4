"""Log-in, brute-force throttling, users and roles, password storage and the shared key pair."""

from __future__ import annotations

import threading

import jwt
import pytest
import sqlalchemy as sa

from services.backend.api import auth as auth_api
from services.backend.keys import load_key_pair

from .conftest import ADMIN_PASSWORD, bearer


def _login(client, username, password, address="127.0.0.1"):
    return client.post("/api/auth", json={"username": username, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_login_gives_an_8_hour_rs256_jwt_and_refuses_wrong_credentials(client):
    response = _login(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200
    token = response.json["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, client.get("/api/version").json["keys"][0]["key"], algorithms=["RS256"])
    assert claims["user"] == {"username": "admin", "roles": ["admin"]}
    assert claims["exp"] - claims["iat"] == 8 * 3600
    wrong = _login(client, "admin", "not-the-password", "10.0.0.1")
    unknown = _login(client, "nobody-at-all", "not-the-password", "10.0.0.1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json == {"message": "wrong username or password", "reason": "bad_credentials"}
    with client.application.extensions["rasax"].engine.begin() as connection:
        connection.execute(sa.text("UPDATE rasa_x_user SET failed_logins = 0 WHERE username = 'admin'"))


def test_repeated_failures_lock_the_account_until_an_admin_resets_it(client, admin):
    assert client.post("/api/users", json={"username": "victim", "password": "victim-password", "roles": ["tester"]}, headers=admin).status_code == 201
    for _ in range(5):
        assert _login(client, "victim", "guess-guess", "10.0.0.2").status_code == 401
    locked = _login(client, "victim", "victim-password", "10.0.0.3")
    assert locked.status_code == 429 and locked.json["reason"] == "too_many_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 31
    assert client.put("/api/users/victim", json={"password": "victim-password-2"}, headers=admin).status_code == 200
    assert _login(client, "victim", "victim-password-2", "10.0.0.3").status_code == 200
    client.delete("/api/users/victim", headers=admin)


def test_many_failures_from_one_address_are_refused_for_a_while(client, monkeypatch):
    monkeypatch.setattr(auth_api, "IP_FAILURE_LIMIT", 3)
    for name in ("a-user", "b-user", "c-user"):
        assert _login(client, name, "password-guess", "10.0.0.9").status_code == 401
    refused = _login(client, "admin", ADMIN_PASSWORD, "10.0.0.9")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # Another address is not affected.
    assert _login(client, "admin", ADMIN_PASSWORD, "10.0.0.10").status_code == 200
    # Behind nginx every request comes from nginx: the address nginx appends is what counts.
    via_nginx = lambda client_address: client.post(  # noqa: E731
        "/api/auth", json={"username": "admin", "password": ADMIN_PASSWORD},
        headers={"X-Forwarded-For": f"10.0.0.9, {client_address}"}, environ_base={"REMOTE_ADDR": "172.18.0.5"},
    )  # fmt: skip
    assert via_nginx("10.0.0.11").status_code == 200
    assert via_nginx("10.0.0.9").status_code == 429


def test_passwords_are_stored_with_scrypt_and_a_per_user_salt(client, admin, db_engine, settings):
    for name in ("twin-1", "twin-2"):
        client.post("/api/users", json={"username": name, "password": "the-same-password", "roles": ["tester"]}, headers=admin)
    with db_engine.connect() as connection:
        hashes = connection.execute(sa.text("SELECT password_hash FROM rasa_x_user WHERE username LIKE 'twin-%'")).scalars().all()
    assert len(set(hashes)) == 2 and all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    assert not any("the-same-password" in h or settings.password_salt in h for h in hashes)
    for name in ("twin-1", "twin-2"):
        client.delete(f"/api/users/{name}", headers=admin)


def test_user_management_and_own_account(client, admin):
    created = client.post("/api/users", json={"username": "newbie", "password": "newbie-password", "roles": ["annotator"]}, headers=admin)
    assert created.status_code == 201 and created.json["roles"] == ["annotator"]
    assert client.post("/api/users", json={"username": "newbie", "password": "newbie-password", "roles": ["annotator"]}, headers=admin).status_code == 409
    assert client.post("/api/users", json={"username": "x", "password": "newbie-password", "roles": ["emperor"]}, headers=admin).json["reason"] == "bad_roles"
    assert client.post("/api/users", json={"username": "x", "password": "short", "roles": ["tester"]}, headers=admin).json["reason"] == "bad_password"
    listed = client.get("/api/users", headers=admin)
    assert "newbie" in [u["username"] for u in listed.json] and int(listed.headers["X-Total-Count"]) == len(listed.json)
    assert all("api_token" not in u for u in listed.json)

    token = _login(client, "newbie", "newbie-password").json["access_token"]
    mine = bearer(token)
    assert client.get("/api/conversations", headers=mine).status_code == 200
    assert client.put("/api/users/newbie", json={"roles": ["guest"]}, headers=admin).status_code == 200
    # Roles are read per request: the demotion counts at once, before the JWT expires.
    assert client.get("/api/conversations", headers=mine).status_code == 403
    assert client.patch("/api/user", json={"name": "New Bie", "data": {"theme": "dark"}}, headers=mine).json["name"] == "New Bie"
    assert client.post("/api/user/password", json={"old_password": "wrong-one", "new_password": "newbie-password-2"}, headers=mine).status_code == 403
    changed = client.post("/api/user/password", json={"old_password": "newbie-password", "new_password": "newbie-password-2", "new_password_confirm": "newbie-password-2"}, headers=mine)
    assert changed.status_code == 200
    assert _login(client, "newbie", "newbie-password").status_code == 401
    assert _login(client, "newbie", "newbie-password-2").status_code == 200

    assert client.delete("/api/users/newbie", headers=admin).status_code == 200
    assert client.get("/api/user", headers=mine).status_code == 401
    assert client.delete("/api/users/newbie", headers=admin).status_code == 404
    # The last admin can be neither deleted nor demoted.
    assert client.delete("/api/users/admin", headers=admin).status_code == 409
    assert client.put("/api/users/admin", json={"roles": ["tester"]}, headers=admin).status_code == 409


def test_replicas_share_one_key_pair_created_once(migrated_engine, settings):
    results = []

    def create():
        results.append(load_key_pair(settings, migrated_engine))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({pair.public_pem for pair in results}) == 1
    with migrated_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM rsa_key_pair")).scalar() == 1


def test_key_files_from_init_are_used_when_set(tmp_path, migrated_engine, settings):
    from dataclasses import replace

    from services.backend.keys import generate_key_pair

    pair = generate_key_pair()
    (tmp_path / "private.pem").write_text(pair.private_pem)
    (tmp_path / "public.pem").write_text(pair.public_pem)
    configured = replace(settings, jwt_private_key_path=str(tmp_path / "private.pem"), jwt_public_key_path=str(tmp_path / "public.pem"))
    assert load_key_pair(configured, migrated_engine) == pair
    (tmp_path / "public.pem").write_text("not a key")
    with pytest.raises(ValueError):
        load_key_pair(configured, migrated_engine)
