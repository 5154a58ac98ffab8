"""Bot packs: the bundled default loads and hangs together, every fixed prompt can be spoken as it is, and a
broken pack fails at start-up with a `BotPackError` that names the file, the path in it and the problem."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialogs.errors import BotPackError, DialogError
from dialogs.manager import DialogManagerFactory
from dialogs.pack import REQUIRED_PROMPTS, BotPack, load_pack

URL = re.compile(r"https?://|www\.|\.(?:com|org|net)\b", re.IGNORECASE)
Raw = dict[str, Any]


def bundled() -> Raw:
    """The default pack as plain data, ready to be broken one way or another."""
    text = files("dialogs.packs").joinpath("larkspur.yaml").read_text(encoding="utf-8")
    raw: Raw = yaml.safe_load(text)
    return copy.deepcopy(raw)


def write(tmp_path: Path, raw: object, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# --- the default pack ---------------------------------------------------------------------------------------


def test_default_pack_loads_with_the_bundled_name_as_its_source() -> None:
    pack = load_pack()
    assert isinstance(pack, BotPack)
    assert pack.company == "Larkspur Health"
    assert pack.source == "dialogs/packs/larkspur.yaml"


def test_a_pack_loaded_from_a_path_equals_the_bundled_default(tmp_path: Path) -> None:
    loaded = load_pack(write(tmp_path, bundled()))
    assert loaded.model_dump() == load_pack().model_dump()  # `source` is excluded from the dump


def test_every_intent_and_the_policy_queues_name_an_existing_queue(pack: BotPack) -> None:
    queues = {q.name for q in pack.queues}
    assert {i.queue for i in pack.intents} <= queues
    assert pack.default_queue in queues
    assert pack.policy.distress_queue in queues
    assert pack.policy.language_queue in queues


def test_every_intent_is_either_served_or_escalated_never_both(pack: BotPack) -> None:
    for intent in pack.intents:
        assert (intent.handling is None) != (intent.escalate is None), intent.name


def test_every_topic_names_a_self_service_intent(pack: BotPack) -> None:
    assert [t.word for t in pack.topics] == ["account", "order", "appointment"]
    for topic in pack.topics:
        assert pack.intent(topic.intent).handling is not None


def test_the_pack_has_every_required_prompt(pack: BotPack) -> None:
    assert pack.prompts.keys() >= REQUIRED_PROMPTS


def test_fixed_prompts_are_non_empty_speakable_text_without_blanks_or_urls(pack: BotPack) -> None:
    prompts = list(DialogManagerFactory(pack).fixed_prompts())
    assert len(prompts) > 20
    for text in prompts:
        assert isinstance(text, str)
        assert text.strip(), "an empty prompt"
        assert "{" not in text and "}" not in text, text
        assert not URL.search(text), text


def test_fixed_prompts_include_a_handoff_line_per_queue(pack: BotPack) -> None:
    prompts = set(DialogManagerFactory(pack).fixed_prompts())
    for queue in pack.queues:
        assert pack.prompt("handoff", team=queue.name.replace("_", " ")) in prompts


def test_topic_in_reads_topic_words_singular_and_plural(pack: BotPack) -> None:
    assert pack.topic_in("it's about my account") == "account_login"
    assert pack.topic_in("two orders") == "order_status"
    assert pack.topic_in("appointments") == "appointment_reschedule"
    assert pack.topic_in("about my bill") is None


# --- a broken pack names the file, the path and the problem --------------------------------------------------


def test_a_missing_file_is_a_botpackerror_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(BotPackError) as info:
        load_pack(missing)
    assert info.value.file == str(missing)
    assert str(missing) in str(info.value)
    assert "cannot read" in info.value.problem


def test_botpackerror_is_a_dialogerror(tmp_path: Path) -> None:
    with pytest.raises(DialogError):
        load_pack(tmp_path / "nowhere.yaml")


def test_invalid_yaml_is_a_botpackerror_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("company: Larkspur\nqueues: [unclosed\n", encoding="utf-8")
    with pytest.raises(BotPackError) as info:
        load_pack(path)
    assert str(path) in str(info.value)
    assert "not valid YAML" in info.value.problem


@pytest.mark.parametrize("content", ["- a list\n- of things\n", "just a string\n", ""], ids=["list", "str", "empty"])
def test_a_pack_that_is_not_a_mapping_is_a_botpackerror(tmp_path: Path, content: str) -> None:
    path = tmp_path / "not_a_mapping.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BotPackError) as info:
        load_pack(path)
    assert str(path) in str(info.value)
    assert "mapping" in info.value.problem


def _both_handling_and_escalate(raw: Raw) -> None:
    raw["intents"][0]["escalate"] = {"category": "risk_compliance", "trigger": "both"}


def _unknown_queue(raw: Raw) -> None:
    raw["intents"][0]["queue"] = "nowhere"


def _missing_prompt(raw: Raw) -> None:
    del raw["prompts"]["greeting"]


def _unknown_topic_intent(raw: Raw) -> None:
    raw["topics"][1]["intent"] = "time_travel"


def _unknown_top_level_key(raw: Raw) -> None:
    raw["colour"] = "lilac"


def _unknown_slot(raw: Raw) -> None:
    raw["intents"][1]["slots"] = ["order_number", "shoe_size"]


def _unknown_tool(raw: Raw) -> None:
    raw["intents"][0]["handling"]["tool"] = "teleport"


def _bad_distress_queue(raw: Raw) -> None:
    raw["policy"]["distress_queue"] = "ambulance"


def _bad_category(raw: Raw) -> None:
    raw["intents"][3]["escalate"]["category"] = "vibes"


def _duplicate_intent(raw: Raw) -> None:
    raw["intents"].append(copy.deepcopy(raw["intents"][0]))


def _bad_threshold(raw: Raw) -> None:
    raw["policy"]["low_asr_confidence"] = 1.5


BROKEN: list[tuple[str, Callable[[Raw], None], str, str]] = [
    # (id, how to break the pack, expected path (or "" for a whole-pack check), text the message contains)
    ("both_handling_and_escalate", _both_handling_and_escalate, "intents[0]", "exactly one of"),
    ("unknown_queue", _unknown_queue, "", "intents[0].queue: no queue named 'nowhere'"),
    ("missing_prompt", _missing_prompt, "", "prompts: missing greeting"),
    ("unknown_topic_intent", _unknown_topic_intent, "", "topics[1].intent: no intent named 'time_travel'"),
    ("unknown_top_level_key", _unknown_top_level_key, "colour", "Extra inputs are not permitted"),
    ("unknown_slot", _unknown_slot, "", "intents[1].slots[1]: no slot named 'shoe_size'"),
    ("unknown_tool", _unknown_tool, "", "intents[0].handling: no tool named 'teleport'"),
    ("bad_distress_queue", _bad_distress_queue, "", "policy.distress_queue: no queue named 'ambulance'"),
    ("bad_category", _bad_category, "intents[3].escalate.category", "Input should be"),
    ("duplicate_intent", _duplicate_intent, "", "intents: duplicate names account_login"),
    ("bad_threshold", _bad_threshold, "policy.low_asr_confidence", "less than or equal to 1"),
]


@pytest.mark.parametrize(("breaks", "path", "says"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_an_invalid_pack_is_a_botpackerror_naming_file_path_and_problem(
    tmp_path: Path, breaks: Callable[[Raw], None], path: str, says: str
) -> None:
    raw = bundled()
    breaks(raw)
    pack_file = write(tmp_path, raw, "broken_pack.yaml")
    with pytest.raises(BotPackError) as info:
        load_pack(pack_file)
    error = info.value
    assert error.file == str(pack_file)
    assert str(error).startswith(f"{pack_file}: ")
    assert error.path == path
    assert says in error.problem
    assert says in str(error)


def test_several_problems_are_counted_in_the_message(tmp_path: Path) -> None:
    raw = bundled()
    raw["colour"] = "lilac"
    raw["flavour"] = "mint"
    with pytest.raises(BotPackError) as info:
        load_pack(write(tmp_path, raw))
    assert "(and 1 more problems)" in info.value.problem
