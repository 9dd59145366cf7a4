"""Import and export of a large Rasa project through rasa-x's API under gunicorn.

    python bench/training_data_import.py                      # 20,000 NLU examples, 500 stories
    python bench/training_data_import.py --examples 5000 --stories 100 --rounds 1

Generates a Rasa 3.x project (data/nlu.yml with entities, roles and groups, data/stories.yml,
data/rules.yml, domain.yml, config.yml), starts `python -m services.backend` on a database and a
Redis server of its own (bench/api.py's), and times `POST /api/projects/default/import?mode=replace`
of the project as a .tar.gz and `GET /api/projects/default/export`, each request end to end. Every
round checks that the export holds exactly what was imported. Target: under 5 s each.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import requests
import sqlalchemy as sa
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.api import PG, serve  # noqa: E402
from services.backend.training_data.rasa_yaml import dump_yaml  # noqa: E402
from services.common.config import database_settings  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.db_migration.migrator import Migrator  # noqa: E402
from tests.conftest import free_port  # noqa: E402

WORDS = "please could you book find show me a the flight ticket table pizza hotel room for tomorrow today now my with and to".split()
CITIES = ["Berlin", "Paris", "London", "Rome", "Madrid", "Lisbon", "Vienna", "Oslo", "Prague", "Dublin"]


def project(examples: int, stories: int, seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    intents = [f"intent_{i:03d}" for i in range(max(1, examples // 100))]
    blocks, seen = {intent: [] for intent in intents}, set()
    while len(seen) < examples:
        words = rng.choices(WORDS, k=rng.randint(3, 9))
        text = " ".join(words) + f" {len(seen)}"
        if rng.random() < 0.3:
            text += f' from [{rng.choice(CITIES)}]{{"entity": "city", "role": "departure"}} to [{rng.choice(CITIES)}](city)'
        seen.add(text)
        blocks[intents[len(seen) % len(intents)]].append(text)
    nlu = [{"intent": intent, "examples": "".join(f"- {t}\n" for t in lines)} for intent, lines in blocks.items()]
    nlu.append({"lookup": "city", "examples": "".join(f"- {c}\n" for c in CITIES)})
    actions = [f"utter_{i:03d}" for i in range(len(intents))]
    story_blocks = []
    for n in range(stories):
        steps = []
        for _ in range(4):
            steps += [{"intent": rng.choice(intents)}, {"action": rng.choice(actions)}]
        story_blocks.append({"story": f"story {n}", "steps": steps})
    rules = [{"rule": f"rule {i}", "steps": [{"intent": intent}, {"action": action}]} for i, (intent, action) in enumerate(zip(intents[:50], actions))]
    domain = {"version": "3.1", "intents": intents, "entities": [{"city": {"roles": ["departure"]}}],
              "responses": {action: [{"text": f"answer {action}"}] for action in actions}}  # fmt: skip
    config = {"recipe": "default.v1", "language": "en", "pipeline": [{"name": "WhitespaceTokenizer"}], "policies": [{"name": "RulePolicy"}]}
    documents = {
        "data/nlu.yml": {"version": "3.1", "nlu": nlu},
        "data/stories.yml": {"version": "3.1", "stories": story_blocks},
        "data/rules.yml": {"version": "3.1", "rules": rules},
        "domain.yml": domain,
        "config.yml": config,
    }
    return {path: dump_yaml(document).encode() for path, document in documents.items()}


def targz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--stories", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    files = project(args.examples, args.stories)
    upload = targz(files)
    print(f"project: {args.examples} NLU examples, {args.stories} stories; {sum(map(len, files.values())) / 2**20:.1f} MiB "
          f"of YAML, {len(upload) / 2**10:.0f} KiB as .tar.gz", flush=True)  # fmt: skip

    admin_engine = sa.create_engine(
        sa.engine.URL.create("postgresql+psycopg2", username=PG["DB_USER"], password=PG["DB_PASSWORD"],
                             host=PG["DB_HOST"], port=int(PG["DB_PORT"]), database="postgres"),
        isolation_level="AUTOCOMMIT",
    )  # fmt: skip
    name = f"bench_training_{secrets.token_hex(4)}"
    redis_dir = tempfile.mkdtemp(prefix="bench-redis-")
    redis_port, redis_password = free_port(), secrets.token_hex(8)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--requirepass", redis_password,
         "--save", "", "--appendonly", "no", "--dir", redis_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    process = None
    try:
        env = {
            **PG, "DB_DATABASE": name, "RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PASSWORD": "unused",
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "REDIS_PASSWORD": redis_password, "REDIS_DB": "0",
            "RASA_X_TOKEN": secrets.token_hex(8), "RASA_TOKEN": secrets.token_hex(8), "JWT_SECRET": secrets.token_hex(8),
            "PASSWORD_SALT": secrets.token_hex(8), "RASA_X_PASSWORD": "bench-" + secrets.token_hex(8),
            "RASA_MODEL_DIR": redis_dir, "RASA_PRODUCTION_HOST": "http://127.0.0.1:9", "RASA_WORKER_HOST": "http://127.0.0.1:9",
        }  # fmt: skip
        with admin_engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(database_settings(env))
        Migrator(engine).run()
        engine.dispose()
        process, url = serve(env)
        token = requests.post(f"{url}/api/auth", json={"username": "admin", "password": env["RASA_X_PASSWORD"]}, timeout=30).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        imports, exports = [], []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            response = requests.post(f"{url}/api/projects/default/import?mode=replace", headers=headers, timeout=600,
                                     files=[("files", ("project.tar.gz", upload))])  # fmt: skip
            imports.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:500]
            assert (response.json()["examples"], response.json()["stories"]) == (args.examples, args.stories)
            started = time.perf_counter()
            exported = requests.get(f"{url}/api/projects/default/export", headers=headers, timeout=600)
            exports.append(time.perf_counter() - started)
            assert exported.status_code == 200
            with tarfile.open(fileobj=io.BytesIO(exported.content), mode="r:gz") as archive:
                for path, data in files.items():
                    assert yaml.safe_load(archive.extractfile(path).read()) == yaml.safe_load(data), path
            print(f"  round {round_ + 1}: import {imports[-1]:.2f} s, export {exports[-1]:.2f} s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        print(f"import of {args.examples} NLU examples + {args.stories} stories: median {statistics.median(imports):.2f} s; "
              f"export: median {statistics.median(exports):.2f} s (target < 5 s each)")  # fmt: skip
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(30)
        redis.terminate()
        shutil.rmtree(redis_dir, ignore_errors=True)
        with admin_engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
