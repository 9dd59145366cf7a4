"""`status`'s model column from what Rasa's /status and rasa-x's model server answered."""

from deploy.rasa_servers import NO_MODEL, describe


def test_no_model_yet_and_a_loaded_model():
    assert describe({"status": 409, "body": None, "tagged": None}) == NO_MODEL
    assert describe({"status": 200, "body": {"model_file": "/tmp/x/moodbot.tar.gz"}, "tagged": "moodbot.tar.gz"}) \
        == "moodbot.tar.gz"


def test_a_tagged_model_rasa_does_not_run_shows_beside_the_one_it_runs():
    answer = {"status": 200, "body": {"model_file": "moodbot.tar.gz"}, "tagged": "broken.tar.gz"}
    assert describe(answer) == "moodbot.tar.gz (tagged production: broken.tar.gz, not loaded)"
    assert describe({"status": 409, "body": None, "tagged": "new.tar.gz"}) == \
        f"{NO_MODEL} (tagged production: new.tar.gz, not loaded)"


def test_rasa_not_answering_is_said_so():
    assert describe({"status": None, "body": None, "tagged": None}).startswith("unknown (Rasa did not answer")
    assert describe({"status": 500, "body": None, "tagged": None}) == "unknown (Rasa answered 500)"
