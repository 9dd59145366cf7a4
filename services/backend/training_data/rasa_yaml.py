"""Rasa 3.x project files ⇄ a `Project`: reading with the line of every problem, writing what
Rasa reads back unchanged.

The shapes are Rasa's documented ones (rasa.com/docs/rasa/training-data-format, /domain,
/model-configuration). A file is classified by its top-level keys as Rasa does: `nlu`, `stories`
and `rules` make a training data file (one file may hold all three), domain keys a domain, config
keys a config. Scalars are read as YAML 1.2, as Rasa's reader does: `yes`, `on` and dates stay
strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from . import annotation

FORMAT_VERSION = "3.1"
FEATURE_KINDS = ("synonym", "regex", "lookup")
DATA_KEYS = {"version", "nlu", "stories", "rules"}
DOMAIN_KEYS = {"version", "intents", "entities", "slots", "forms", "actions", "responses", "session_config", "e2e_actions", "config"}
CONFIG_KEYS = {"version", "recipe", "language", "pipeline", "policies", "assistant_id", "importers", "train_schema", "predict_schema", "spaces"}
PARTS = ("nlu", "stories", "rules", "domain", "config")
# The files of an export, by part (docs/design.md §6).
EXPORT_FILES = {"nlu": "data/nlu.yml", "stories": "data/stories.yml", "rules": "data/rules.yml", "domain": "domain.yml", "config": "config.yml"}
MAX_EXAMPLE_LENGTH = 2000
MAX_NAME_LENGTH = 255
# Values a file may hold once YAML aliases are expanded: far above any real project, far below
# what an alias bomb (each level repeating the one before) would make the reader walk.
MAX_VALUES = 1_000_000

# Story and rule steps: the keys a step may have, and those one of which it must have.
STEP_KEYS = {"intent", "user", "entities", "action", "bot", "checkpoint", "or", "slot_was_set", "active_loop", "metadata"}
STEP_KINDS = STEP_KEYS - {"entities", "metadata"}
BLOCK_KEYS = {
    "stories": {"story", "steps", "metadata"},
    "rules": {"rule", "steps", "metadata", "condition", "conversation_start", "wait_for_user_input"},
}
BLOCK_NAME = {"stories": "story", "rules": "rule"}
RESPONSE_KEYS = {"text", "image", "buttons", "quick_replies", "custom", "attachment", "elements", "channel", "condition", "metadata", "id"}


class FormatError(ValueError):
    """A file that is not what Rasa reads: which file, which line, what was expected."""

    def __init__(self, filename: str, line: int | None, message: str):
        self.filename, self.line = filename, line
        super().__init__(f"{filename}{f', line {line}' if line else ''}: {message}")


@dataclass
class Example:
    text: str
    intent: str
    entities: list[dict] = field(default_factory=list)
    filename: str | None = None
    line: int | None = None
    # Rasa's metadata of the example and of its intent block, each any YAML value, under the
    # keys "example" and "intent" when given (Message.build's METADATA_EXAMPLE / METADATA_INTENT).
    metadata: dict | None = None


@dataclass
class Feature:
    kind: str  # one of FEATURE_KINDS
    name: str
    examples: list[str]


@dataclass
class Project:
    examples: list[Example] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    stories: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    domain: dict | None = None
    config: dict | None = None
    parts: set[str] = field(default_factory=set)  # which of PARTS the files carried


# ----- reading -----------------------------------------------------------------------------
class Located(dict):
    """A YAML mapping that knows its line and the line of each value (1-based)."""

    line: int = 0
    lines: dict

    def line_of(self, key) -> int:
        return self.lines.get(key, self.line)


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    pass


# YAML 1.2 core schema booleans only (1.1's yes/no/on/off are strings to Rasa), and no timestamps.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _mapping(loader, node):
    data = Located()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    data.update(loader.construct_mapping(node, deep=True))
    for key, value in node.value:
        # A block scalar (| or >) starts on the line after its indicator.
        block = isinstance(value, yaml.ScalarNode) and value.style in ("|", ">")
        data.lines[getattr(key, "value", None)] = value.start_mark.line + 1 + (1 if block else 0)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def load_yaml(filename: str, content: bytes | str):
    try:
        return yaml.load(content, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FormatError(filename, mark.line + 1 if mark else None, f"not valid YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FormatError(filename, None, f"not valid YAML: {exc}") from None


def _expect(condition: bool, filename: str, line: int | None, message: str) -> None:
    if not condition:
        raise FormatError(filename, line, message)


def _name(value, filename: str, line: int, what: str) -> str:
    _expect(isinstance(value, str) and value.strip() != "" and len(value) <= MAX_NAME_LENGTH and "\x00" not in value, filename, line,
            f"{what} must be a non-empty string of at most {MAX_NAME_LENGTH} characters, without NUL")  # fmt: skip
    return value


EXAMPLE_ITEM_KEYS = {"text", "metadata"}
METADATA_KINDS = ("intent", "example")


def _example_lines(block: Located, filename: str) -> list[tuple[int, str, dict]]:
    """(line, example, {"metadata": ...} when the example has its own) of each example: from a
    block of '- example' lines, or from a list of {text, metadata} (Rasa's form with metadata)."""
    raw = block.get("examples")
    line = block.line_of("examples")
    if isinstance(raw, list):
        result = []
        for item in raw:
            where = getattr(item, "line", line)
            _expect(isinstance(item, Located) and isinstance(item.get("text"), str), filename, where,
                    "each item of 'examples' must be a mapping with 'text' (and optionally 'metadata')")  # fmt: skip
            unknown = set(item) - EXAMPLE_ITEM_KEYS
            _expect(not unknown, filename, where, f"unexpected keys {sorted(map(str, unknown))} in an example; expected 'text' and 'metadata'")
            # Rasa strips these around a text given as a block scalar (text: |).
            text = item["text"].strip("\n\r ")
            result.append((item.line_of("text"), text, {"metadata": plain(item["metadata"])} if "metadata" in item else {}))
        return result
    _expect(isinstance(raw, str), filename, line, "'examples' must be a block of '- example' lines (examples: |) "
            "or a list of {text, metadata}")  # fmt: skip
    result = []
    for offset, text in enumerate(raw.splitlines()):
        if not text.strip():
            continue
        _expect(text.startswith("-"), filename, line + offset, f"expected '- example', got {text[:60]!r}")
        result.append((line + offset, text[1:].strip(), {}))
    return result


def _read_nlu(items, filename: str, line: int, project: Project) -> None:
    _expect(isinstance(items, list), filename, line, "'nlu' must be a list of intent, synonym, regex or lookup blocks")
    for block in items:
        _expect(isinstance(block, Located), filename, line, "each 'nlu' item must be a mapping")
        kinds = [k for k in ("intent", *FEATURE_KINDS) if k in block]
        _expect(len(kinds) == 1, filename, block.line, "each 'nlu' item needs exactly one of intent, synonym, regex, lookup")
        kind = kinds[0]
        allowed = {kind, "examples", "metadata"} if kind == "intent" else {kind, "examples"}
        unknown = set(block) - allowed
        _expect(not unknown, filename, block.line, f"unexpected keys {sorted(map(str, unknown))} in the {kind} block; "
                f"expected only {sorted(allowed)}")  # fmt: skip
        name = _name(block[kind], filename, block.line, f"the {kind} name")
        lines = _example_lines(block, filename)
        if kind != "intent":
            _expect(all(not own for _, _, own in lines), filename, block.line_of("examples"),
                    f"the examples of a {kind} are a block of '- example' lines (examples: |), without metadata")  # fmt: skip
        if kind == "intent":
            intent_metadata = {"intent": plain(block["metadata"])} if "metadata" in block else {}
            for example_line, raw, own in lines:
                _expect(len(raw) <= MAX_EXAMPLE_LENGTH, filename, example_line, f"an example is longer than {MAX_EXAMPLE_LENGTH} characters")
                try:
                    text, entities = annotation.parse(raw)
                except annotation.AnnotationError as exc:
                    raise FormatError(filename, example_line, str(exc)) from None
                _expect(text.strip() != "", filename, example_line, "an example must have text")
                _expect("\x00" not in text, filename, example_line, "an example may not contain NUL")
                metadata = {**intent_metadata, **({"example": own["metadata"]} if own else {})}
                project.examples.append(Example(text, name, entities, filename, example_line, metadata or None))
        else:
            if kind == "regex":
                for pattern_line, pattern, _ in lines:
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        raise FormatError(filename, pattern_line, f"the regex {pattern!r} does not compile: {exc}") from None
            project.features.append(Feature(kind, name, [text for _, text, _ in lines]))


def _check_steps(steps, filename: str, line: int, what: str) -> None:
    _expect(isinstance(steps, list), filename, line, f"the steps of {what} must be a list")
    for step in steps:
        _expect(isinstance(step, Located), filename, line, f"each step of {what} must be a mapping")
        unknown = set(step) - STEP_KEYS
        _expect(not unknown, filename, step.line, f"unknown step keys {sorted(map(str, unknown))}; expected one of {sorted(STEP_KINDS)}")
        _expect(bool(set(step) & STEP_KINDS), filename, step.line, f"a step needs one of {sorted(STEP_KINDS)}")
        for key in ("intent", "action", "bot", "checkpoint"):
            if key in step:
                _name(step[key], filename, step.line_of(key), f"'{key}'")
        if "user" in step:
            _expect(isinstance(step["user"], str), filename, step.line_of("user"), "'user' must be the message text")
            try:
                annotation.parse(step["user"])
            except annotation.AnnotationError as exc:
                raise FormatError(filename, step.line_of("user"), str(exc)) from None
        if "or" in step:
            _check_steps(step["or"], filename, step.line_of("or"), "an 'or'")
        if "slot_was_set" in step:
            _expect(isinstance(step["slot_was_set"], list), filename, step.line_of("slot_was_set"),
                    "'slot_was_set' must be a list of slot names or {slot: value}")  # fmt: skip


def _read_blocks(part: str, items, filename: str, line: int, project: Project) -> None:
    key = BLOCK_NAME[part]
    _expect(isinstance(items, list), filename, line, f"'{part}' must be a list of {key} blocks")
    for block in items:
        _expect(isinstance(block, Located), filename, line, f"each item of '{part}' must be a mapping with '{key}' and 'steps'")
        unknown = set(block) - BLOCK_KEYS[part]
        _expect(not unknown, filename, block.line, f"unexpected keys {sorted(map(str, unknown))}; a {key} has {sorted(BLOCK_KEYS[part])}")
        name = _name(block.get(key), filename, block.line, f"'{key}' (its name)")
        _check_steps(block.get("steps"), filename, block.line_of("steps"), f"{key} {name!r}")
        if "condition" in block:
            _check_steps(block["condition"], filename, block.line_of("condition"), f"the condition of {name!r}")
        getattr(project, part).append(plain(block))


def _check_domain(domain: Located, filename: str) -> None:
    def line(key):
        return domain.line_of(key)

    for key in ("intents", "entities", "actions", "e2e_actions"):
        if domain.get(key) is not None:
            _expect(isinstance(domain[key], list), filename, line(key), f"'{key}' must be a list")
            for item in domain[key]:
                ok = isinstance(item, str) or (isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item)), str))
                _expect(ok, filename, line(key), f"each of '{key}' must be a name or {{name: {{...}}}}")
    for key in ("slots", "forms", "responses", "session_config", "config"):
        if domain.get(key) is not None:
            _expect(isinstance(domain[key], dict), filename, line(key), f"'{key}' must be a mapping")
    for name, slot in (domain.get("slots") or {}).items():
        where = domain["slots"].line_of(name)
        _expect(isinstance(slot, dict) and isinstance(slot.get("type"), str), filename, where, f"slot {name!r} needs a 'type'")
        mappings = slot.get("mappings", [])
        _expect(isinstance(mappings, list) and all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in mappings),
                filename, where, f"the mappings of slot {name!r} must be a list of {{type: ..., ...}}")  # fmt: skip
    for name, form in (domain.get("forms") or {}).items():
        where = domain["forms"].line_of(name)
        _expect(form is None or isinstance(form, dict), filename, where, f"form {name!r} must be a mapping with 'required_slots'")
        if form and "required_slots" in form:
            _expect(isinstance(form["required_slots"], list), filename, where, f"'required_slots' of form {name!r} must be a list of slot names")
    for name, variations in (domain.get("responses") or {}).items():
        where = domain["responses"].line_of(name)
        _expect(isinstance(variations, list) and variations != [], filename, where, f"response {name!r} must be a list of variations")
        for variation in variations:
            _expect(isinstance(variation, dict), filename, where, f"each variation of {name!r} must be a mapping ({sorted(RESPONSE_KEYS)})")
            unknown = set(variation) - RESPONSE_KEYS
            _expect(not unknown, filename, getattr(variation, "line", where), f"response {name!r} has unknown keys {sorted(map(str, unknown))}")
            _expect(bool(set(variation) & {"text", "image", "custom", "attachment", "buttons", "quick_replies", "elements"}),
                    filename, getattr(variation, "line", where), f"a variation of {name!r} needs text, image, buttons, custom or attachment")  # fmt: skip


def plain(value):
    """Located mappings as plain dicts, for storing and comparing."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _check_size(data, filename: str) -> None:
    pending, seen = [data], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise FormatError(filename, None, f"more than {MAX_VALUES} values once its YAML aliases are expanded")
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def read_file(filename: str, content: bytes | str, project: Project) -> None:
    """Add what one Rasa YAML file holds to `project`."""
    data = load_yaml(filename, content)
    _check_size(data, filename)
    _expect(isinstance(data, Located) and data != {}, filename, 1,
            "expected a Rasa file: a mapping with nlu/stories/rules, domain keys or config keys")  # fmt: skip
    keys = set(map(str, data))
    if keys & (DATA_KEYS - {"version"}):
        unknown = keys - DATA_KEYS
        _expect(not unknown, filename, data.line_of(next(iter(unknown), None)),
                f"unexpected top-level keys {sorted(unknown)} in a training data file; expected version, nlu, stories, rules")  # fmt: skip
        if "nlu" in data:
            _read_nlu(data["nlu"] or [], filename, data.line_of("nlu"), project)
            project.parts.add("nlu")
        for part in ("stories", "rules"):
            if part in data:
                _read_blocks(part, data[part] or [], filename, data.line_of(part), project)
                project.parts.add(part)
    elif keys & (DOMAIN_KEYS - {"version"}) and keys <= DOMAIN_KEYS:
        _check_domain(data, filename)
        project.domain = merge_domains(project.domain, plain(data))
        project.parts.add("domain")
    elif keys & (CONFIG_KEYS - {"version"}) and keys <= CONFIG_KEYS:
        _expect(project.config is None, filename, 1, "a second config file; a project has one config.yml")
        for key in ("pipeline", "policies"):
            _expect(data.get(key) is None or isinstance(data[key], list), filename, data.line_of(key), f"'{key}' must be a list of components")
        project.config = plain(data)
        project.parts.add("config")
    else:
        raise FormatError(filename, 1, f"top-level keys {sorted(keys)} are not Rasa's: expected nlu/stories/rules (training data), "
                          f"{sorted(DOMAIN_KEYS - {'version'})} (domain) or {sorted(CONFIG_KEYS - {'version'})} (config)")  # fmt: skip


def merge_domains(first: dict | None, second: dict) -> dict:
    """Two domains as one, as Rasa merges a domain split over files: lists united in order,
    mappings updated by the second."""
    if first is None:
        return second
    merged = dict(first)
    for key, value in second.items():
        old = merged.get(key)
        if isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [v for v in value if v not in old]
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


# ----- writing -----------------------------------------------------------------------------
class _Dumper(yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper):  # type: ignore[misc]
    pass


def _str(dumper, value: str):
    # Example blocks read as Rasa writes them: `examples: |` and one '- example' a line.
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)


def _examples_block(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def _intent_block(intent: str, metadata, examples: list[Example]) -> dict:
    block: dict = {"intent": intent}
    if metadata is not _NONE:
        block["metadata"] = metadata
    rendered = [annotation.render(e.text, e.entities) for e in examples]
    if any("example" in (e.metadata or {}) for e in examples):
        # Rasa's form for examples with metadata: a list of {text, metadata}.
        block["examples"] = [{"text": text, **({"metadata": e.metadata["example"]} if "example" in (e.metadata or {}) else {})}
                             for text, e in zip(rendered, examples)]  # fmt: skip
    else:
        block["examples"] = _examples_block(rendered)
    return block


_NONE = object()


def nlu_document(project: Project) -> dict:
    # One block per intent and intent metadata, in the order they first appear.
    by_block: dict[tuple[str, str], tuple[object, list[Example]]] = {}
    for example in project.examples:
        metadata = (example.metadata or {}).get("intent", _NONE)
        key = (example.intent, "" if metadata is _NONE else json.dumps(metadata, sort_keys=True, default=str))
        by_block.setdefault(key, (metadata, []))[1].append(example)
    blocks = [_intent_block(intent, metadata, examples) for (intent, _), (metadata, examples) in by_block.items()]
    for kind in FEATURE_KINDS:
        blocks += [{kind: f.name, "examples": _examples_block(f.examples)} for f in project.features if f.kind == kind]
    return {"version": FORMAT_VERSION, "nlu": blocks}


# Without a config, Rasa's defaults: a null pipeline and policies make `rasa train` choose them.
DEFAULT_CONFIG = {"recipe": "default.v1", "language": "en", "pipeline": None, "policies": None}


def documents(project: Project) -> dict[str, dict]:
    """The parsed content of each exported file, by its path in the export."""
    domain = dict(project.domain or {})
    domain = {"version": domain.pop("version", FORMAT_VERSION), **domain}
    return {
        EXPORT_FILES["nlu"]: nlu_document(project),
        EXPORT_FILES["stories"]: {"version": FORMAT_VERSION, "stories": project.stories},
        EXPORT_FILES["rules"]: {"version": FORMAT_VERSION, "rules": project.rules},
        EXPORT_FILES["domain"]: domain,
        EXPORT_FILES["config"]: project.config if project.config is not None else DEFAULT_CONFIG,
    }


def write(project: Project) -> dict[str, str]:
    """The project's files as Rasa 3.x YAML, by path."""
    return {path: dump_yaml(document) for path, document in documents(project).items()}
