"""Reads TwiML the way Twilio does, for the replay harness: a list of verbs with their nouns."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from telephony.replay.errors import ReplayError


@dataclass
class Verb:
    """One TwiML element: its name, attributes, text and nested elements."""

    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""
    children: list[Verb] = field(default_factory=list)

    def find(self, name: str) -> Verb | None:
        return next((child for child in self.children if child.name == name), None)


def read_twiml(document: str) -> list[Verb]:
    """The verbs of a `<Response>`; ReplayError when the document is not TwiML."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise ReplayError(f"the server answered something that is not XML: {exc}: {document[:200]!r}") from exc
    if root.tag != "Response":
        raise ReplayError(f"TwiML must have <Response> at its root, not <{root.tag}>")
    return [_verb(child) for child in root]


def _verb(element: ET.Element) -> Verb:
    return Verb(
        name=element.tag,
        attrs=dict(element.attrib),
        text=(element.text or "").strip(),
        children=[_verb(child) for child in element],
    )
