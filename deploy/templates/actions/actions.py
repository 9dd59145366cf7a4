"""An example custom action, run by the action server (`app`, the rasax/rasa-sdk image).

Replace this package with your own: the action server serves whatever actions/ holds. An action
named here must also be listed under `actions:` in the assistant's domain.yml.
"""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionHelloWorld(Action):
    def name(self) -> Text:
        return "action_hello_world"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text="Hello World!")
        return []
