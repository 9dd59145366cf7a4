"""What Rasa X warned about in the training data: things `rasa train` accepts but that are
probably mistakes. Computed from a `Project`, so an import can be checked before it is stored."""

from __future__ import annotations

from .rasa_yaml import Project

# Actions every Rasa 3.6 assistant has without declaring them (rasa/shared/core/constants.py).
DEFAULT_ACTIONS = {
    "action_listen", "action_restart", "action_session_start", "action_default_fallback", "action_deactivate_loop",
    "action_revert_fallback_events", "action_default_ask_affirmation", "action_default_ask_rephrase",
    "action_two_stage_fallback", "action_unlikely_intent", "action_back", "action_extract_slots",
}  # fmt: skip
DEFAULT_INTENTS = {"back", "restart", "session_start", "nlu_fallback", "out_of_scope"}


def _names(items) -> list[str]:
    return [item if isinstance(item, str) else next(iter(item)) for item in items or []]


def _steps(steps):
    for step in steps or []:
        yield step
        yield from _steps(step.get("or"))


def warnings(project: Project) -> list[dict]:
    domain = project.domain or {}
    responses = set(domain.get("responses") or {})
    forms = set(domain.get("forms") or {})
    domain_intents = set(_names(domain.get("intents")))
    domain_entities = set(_names(domain.get("entities")))
    actions = set(_names(domain.get("actions"))) | responses | forms | DEFAULT_ACTIONS
    example_intents = {e.intent for e in project.examples}

    used_intents: dict[str, str] = {}
    used_actions: dict[str, str] = {}
    for kind, blocks in (("story", project.stories), ("rule", project.rules)):
        for block in blocks:
            where = f"{kind} {block[kind]!r}"
            for step in _steps([*(block.get("condition") or []), *block.get("steps", [])]):
                if "intent" in step:
                    used_intents.setdefault(step["intent"], where)
                for key in ("action", "active_loop"):
                    if isinstance(step.get(key), str) and step[key] != "null":
                        used_actions.setdefault(step[key], where)

    found: list[dict] = []

    def warn(kind: str, name: str, message: str) -> None:
        found.append({"type": kind, "name": name, "message": message})

    for intent, where in used_intents.items():
        if intent not in example_intents and intent not in DEFAULT_INTENTS:
            warn("intent_without_examples", intent, f"the intent {intent!r} of {where} has no NLU examples")
        if domain and intent not in domain_intents:
            warn("intent_not_in_domain", intent, f"the intent {intent!r} of {where} is not in the domain")
    for intent in sorted(example_intents - domain_intents) if domain else ():
        warn("intent_not_in_domain", intent, f"the intent {intent!r} has NLU examples but is not in the domain")
    entities = {e["entity"] for example in project.examples for e in example.entities}
    for entity in sorted(entities - domain_entities) if domain else ():
        warn("entity_not_in_domain", entity, f"the entity {entity!r} is annotated in NLU examples but is not in the domain")
    for action, where in used_actions.items():
        if action not in actions:
            warn("action_not_in_domain", action, f"the action {action!r} of {where} is not in the domain")
    # A form asks for its slots with utter_ask_<slot> / utter_ask_<form>_<slot> by itself.
    asked = {
        f"utter_ask_{prefix}{slot}"
        for form, spec in (domain.get("forms") or {}).items()
        for slot in ((spec or {}).get("required_slots") or [])
        for prefix in ("", f"{form}_")
    }
    for response in sorted(responses - set(used_actions) - asked):
        warn("response_not_used", response, f"the response {response!r} is used by no story or rule")
    return found
