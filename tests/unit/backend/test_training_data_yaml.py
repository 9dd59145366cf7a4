"""Rasa's entity annotation syntax and YAML shapes, without a database."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backend.training_data import annotation, archive, rasa_yaml

WORD = st.text(alphabet=st.characters(blacklist_characters="[](){}\n\r\"\\", blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8)
NAME = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True)


@st.composite
def annotated_examples(draw):
    """A text made of plain words and annotated spans, with the entities it should parse to."""
    pieces = draw(st.lists(st.tuples(WORD, st.one_of(st.none(), st.fixed_dictionaries(
        {"entity": NAME}, optional={"role": NAME, "group": NAME, "value": WORD})), ), min_size=1, max_size=6))  # fmt: skip
    text, entities = "", []
    for word, entity in pieces:
        if text:
            text += " "
        if entity is not None:
            entities.append({"start": len(text), "end": len(text) + len(word), "value": entity.get("value", word), **entity})
        text += word
    return text, entities


@given(annotated_examples())
def test_render_then_parse_gives_the_same_text_and_entities(example):
    text, entities = example
    parsed_text, parsed = annotation.parse(annotation.render(text, entities))
    assert parsed_text == text
    assert sorted(parsed, key=lambda e: e["start"]) == sorted(entities, key=lambda e: e["start"])


def test_both_syntaxes_read_and_rasa_s_writer_form_is_written():
    text, entities = annotation.parse('from [NYC](city:New York) to [Rome]{"entity": "city", "role": "destination"}')
    assert text == "from NYC to Rome"
    assert entities == [
        {"start": 5, "end": 8, "entity": "city", "value": "New York"},
        {"start": 12, "end": 16, "entity": "city", "value": "Rome", "role": "destination"},
    ]
    assert annotation.render(text, entities) == (
        'from [NYC]{"entity": "city", "value": "New York"} to [Rome]{"entity": "city", "role": "destination"}'
    )
    assert annotation.parse('[a][{"entity": "x"}, {"entity": "y", "group": "1"}]')[1] == [
        {"start": 0, "end": 1, "entity": "x", "value": "a"},
        {"start": 0, "end": 1, "entity": "y", "value": "a", "group": "1"},
    ]


@pytest.mark.parametrize("bad", ['[x]{"entity": }', '[x]{"role": "r"}', '[x]{"entity": "e", "colour": "red"}', "[x](e", '[x]{"entity": 1}'])
def test_annotations_that_do_not_parse_are_refused(bad):
    with pytest.raises(annotation.AnnotationError):
        annotation.parse(bad)


def test_yaml_is_read_as_rasa_reads_it_yaml_1_2():
    data = rasa_yaml.load_yaml("f.yml", "a: yes\nb: on\nc: 2024-01-01\nd: true\ne: 1.5\n")
    assert data == {"a": "yes", "b": "on", "c": "2024-01-01", "d": True, "e": 1.5}
    assert data.line_of("c") == 3


def test_a_file_with_nlu_stories_and_rules_together():
    project = rasa_yaml.Project()
    rasa_yaml.read_file("all.yml", "nlu:\n- intent: a\n  examples: |\n    - x\nstories:\n- story: s\n  steps:\n  - intent: a\n"
                        "rules:\n- rule: r\n  steps:\n  - intent: a\n  - action: utter_a\n", project)  # fmt: skip
    assert project.parts == {"nlu", "stories", "rules"}
    assert [e.text for e in project.examples] == ["x"]


def test_archives_skip_what_is_not_training_data_and_bound_their_size(monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bot/data/nlu.yml", "nlu: []\n")
        z.writestr("bot/tests/test_stories.yml", "stories: []\n")
        z.writestr("bot/credentials.yml", "rest:\n")
        z.writestr("bot/.github/workflows/ci.yml", "on: push\n")
    assert [name for name, _ in archive.upload_files([("p.zip", buffer.getvalue())])] == ["p.zip:bot/data/nlu.yml"]
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 10)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        data = b"nlu: []\n" + b"#" * 100
        info = tarfile.TarInfo("data/nlu.yml")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(rasa_yaml.FormatError, match="unpacks to more than 10 bytes"):
        archive.upload_files([("p.tar.gz", buffer.getvalue())])


def test_an_alias_bomb_is_refused_before_it_is_walked():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    bomb = "\n".join(levels) + "\nintents: *a7\n"
    with pytest.raises(rasa_yaml.FormatError, match="more than 1000000 values once its YAML aliases are expanded"):
        rasa_yaml.read_file("domain.yml", bomb, rasa_yaml.Project())
