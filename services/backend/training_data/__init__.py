"""The assistant's training data in rasa-x: storage, Rasa 3.x YAML, validation and the NLU inbox.

- `annotation`: the entity annotation syntax of NLU examples, read and written as Rasa does
- `rasa_yaml`: Rasa 3.x project files (data/*.yml, domain.yml, config.yml) ⇄ a `Project`
- `archive`: the files of an upload (YAML files or one .tar.gz/.zip) and the export archive
- `store`: the tables of docs/design.md §5 ⇄ a `Project`; examples, features, stories, domain
- `warnings`: what Rasa X warned about (intents without examples, unused responses, ...)
- `inbox`: the NLU inbox over message_log, and annotation (also of conversation corrections)
- `schemas`: the JSON schemas of the request bodies, used to validate and in the OpenAPI document
"""
