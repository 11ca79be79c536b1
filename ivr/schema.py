"""The flow document: a pydantic schema, one model per node type.

A flow is JSON (YAML accepted on import)::

    {"name": "main", "voice": "en", "start": "greeting",
     "nodes": [{"id": "greeting", "type": "play", "prompt": "Welcome", "next": "menu"}, ...],
     "subflows": {"card": {"start": "ask", "nodes": [...]}}}

Node ids are unique across the whole document.  ``goto`` and every branch stay inside
their own section (the main flow or one subflow); a subflow is entered with a
``subflow`` or ``sensitive`` node and returns to it when a node without a next step
finishes.  The graph checks (references, sections, expressions) live in
:mod:`ivr.compiler`; this module only describes the shape of a document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

NODE_ID = r"^[A-Za-z0-9_.-]{1,64}$"
NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
DTMF_KEY = r"^[0-9*#]$"
VOICES = ("en", "zh", "ko")

NodeRef = Annotated[str, Field(pattern=NODE_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(_Strict):
    """Something the caller hears: text spoken by TTS or a tenant's uploaded recording."""

    tts: str | None = Field(default=None, min_length=1, max_length=2000)
    file: str | None = Field(default=None, pattern=NAME, description="name of an uploaded prompt")
    voice: Literal["en", "zh", "ko"] | None = Field(default=None, description="TTS voice; the flow's voice if unset")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"tts": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> Prompt:
        if (self.tts is None) == (self.file is None):
            raise PydanticCustomError("prompt_source",  # error types: codes the console translates
                                      "a prompt has exactly one of 'tts' (text to speak) or 'file' (an uploaded prompt)")
        return self


class _Node(_Strict):
    id: str = Field(pattern=NODE_ID)
    description: str = Field(default="", max_length=500)


class _Continues(_Node):
    next: NodeRef | None = Field(default=None, description="next node; none ends the section")


class PlayNode(_Continues):
    type: Literal["play"]
    prompt: Prompt
    barge_in: bool = Field(default=False, description="a key press or speech stops the prompt")


class SayNode(_Continues):
    type: Literal["say"]
    kind: Literal["digits", "number", "amount", "date", "time", "datetime"]
    value: str = Field(min_length=1, max_length=500, description="expression giving the value to say")
    lang: Literal["en", "zh"] = "zh"
    currency: Literal["CNY", "USD"] | None = None


class MenuOption(_Strict):
    key: str | None = Field(default=None, pattern=DTMF_KEY)
    phrases: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=20)
    next: NodeRef

    @model_validator(mode="after")
    def _reachable(self) -> MenuOption:
        if self.key is None and not self.phrases:
            raise PydanticCustomError("option_input", "an option needs a 'key' or at least one spoken phrase")
        return self


class MenuNode(_Node):
    type: Literal["menu"]
    prompt: Prompt
    options: list[MenuOption] = Field(min_length=1, max_length=12)
    timeout: float = Field(default=5.0, gt=0, le=60, description="seconds to wait for an answer after the prompt")
    retries: int = Field(default=2, ge=0, le=10, description="prompt repeats after no input or no match")
    barge_in: bool = True
    no_match_prompt: Prompt | None = None
    no_input: NodeRef | None = Field(default=None, description="after the last silent attempt; none hangs up")
    no_match: NodeRef | None = Field(default=None, description="after the last wrong answer; none hangs up")

    @field_validator("options")
    @classmethod
    def _unique_keys(cls, options: list[MenuOption]) -> list[MenuOption]:
        keys = [o.key for o in options if o.key is not None]
        for key in keys:
            if keys.count(key) > 1:
                raise PydanticCustomError("option_key_twice", "key '{key}' is used by more than one option", {"key": key})
        return options


class DigitInput(_Strict):
    min: int = Field(default=1, ge=1, le=64)
    max: int = Field(default=20, ge=1, le=64)
    terminator: str | None = Field(default="#", pattern=DTMF_KEY)
    first_timeout: float = Field(default=5.0, gt=0, le=60)
    inter_timeout: float = Field(default=3.0, gt=0, le=30)

    @model_validator(mode="after")
    def _range(self) -> DigitInput:
        if self.min > self.max:
            raise PydanticCustomError("min_above_max", "min ({min}) is greater than max ({max})",
                                      {"min": self.min, "max": self.max})
        return self


class SpeechInput(_Strict):
    phrases: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=200, description="grammar mode with these phrases; none: free speech")
    timeout: float = Field(default=5.0, gt=0, le=60)


class GatherNode(_Continues):
    type: Literal["gather"]
    prompt: Prompt | None = None
    variable: str = Field(pattern=VARIABLE)
    digits: DigitInput | None = None
    speech: SpeechInput | None = None
    retries: int = Field(default=2, ge=0, le=10)
    barge_in: bool = True
    no_input: NodeRef | None = None
    no_match: NodeRef | None = Field(default=None, description="too few digits or nothing understood")

    @model_validator(mode="after")
    def _some_input(self) -> GatherNode:
        if self.digits is None and self.speech is None:
            raise PydanticCustomError("gather_input", "gather needs 'digits', 'speech' or both")
        return self


class SurveyNode(_Continues):
    """Asks the caller for a satisfaction rating from 1 to 5: a key, or the number said (zh: 一 to 五,
    1分 to 5分; en: one to five). The rating goes into ``variable`` and is stored for the contact the
    flow runs after (a survey after the agent hung up); elsewhere (a test call) it is only traced."""

    type: Literal["survey"]
    prompt: Prompt
    lang: Literal["zh", "en"] | None = Field(default=None, description="the spoken numbers listened for; "
                                                                       "default: zh for a zh flow, else en")
    variable: str = Field(default="rating", pattern=VARIABLE)
    timeout: float = Field(default=5.0, gt=0, le=60, description="seconds to wait for an answer after the prompt")
    retries: int = Field(default=2, ge=0, le=10, description="prompt repeats after no input or no match")
    barge_in: bool = True
    no_match_prompt: Prompt | None = None
    no_input: NodeRef | None = Field(default=None, description="after the last silent attempt; none hangs up")
    no_match: NodeRef | None = Field(default=None, description="after the last answer that is no rating; none hangs up")


class Branch(_Strict):
    when: str = Field(min_length=1, max_length=500)
    next: NodeRef


class ConditionNode(_Node):
    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=1, max_length=50)
    default: NodeRef | None = Field(default=None, description="when no branch matches; none ends the section")


class SetNode(_Continues):
    type: Literal["set"]
    variables: dict[Annotated[str, Field(pattern=VARIABLE)], Annotated[str, Field(min_length=1, max_length=500)]] = \
        Field(min_length=1, max_length=50, description="variable -> expression")


class BusinessHoursNode(_Node):
    type: Literal["business_hours"]
    calendar: str = Field(pattern=NAME)
    open: NodeRef
    closed: NodeRef


class HttpNode(_Continues):
    type: Literal["http"]
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL; {variable} placeholders are filled in")
    method: Literal["GET", "POST"] = "GET"
    send: list[Annotated[str, Field(pattern=VARIABLE)]] = Field(
        default_factory=lambda: ["caller", "dialed"], description="variables sent as query (GET) or JSON (POST)")
    timeout: float = Field(default=3.0, gt=0, le=10)
    map: dict[Annotated[str, Field(pattern=VARIABLE)], Annotated[str, Field(min_length=1, max_length=200)]] = \
        Field(default_factory=dict, description="variable -> dotted path in the JSON response")
    on_error: NodeRef | None = Field(default=None, description="on timeout, error or bad JSON; none: continue")


class QueueNode(_Node):
    type: Literal["queue"]
    queue: str = Field(pattern=NAME)
    priority: int = Field(default=0, ge=0, le=99)
    variables: list[Annotated[str, Field(pattern=VARIABLE)]] | None = Field(
        default=None, description="variables handed to the ACD; none: all collected outside sensitive sections")


class VoicemailNode(_Continues):
    type: Literal["voicemail"]
    prompt: Prompt | None = None
    max_seconds: int = Field(default=120, ge=5, le=600)
    finish_key: str = Field(default="#", pattern=DTMF_KEY)
    silence_seconds: float = Field(default=5.0, ge=1, le=30, description="silence that ends the message")


class TransferNode(_Node):
    type: Literal["transfer"]
    number: str = Field(pattern=r"^\+?[0-9]{3,32}$")
    timeout: float = Field(default=30.0, ge=5, le=120)
    on_failure: NodeRef | None = None


class SubflowNode(_Continues):
    type: Literal["subflow"]
    subflow: str = Field(pattern=NAME)


class SensitiveNode(_Continues):
    """Runs a subflow with recording and speech recognition paused and digits masked."""

    type: Literal["sensitive"]
    subflow: str = Field(pattern=NAME)


class GotoNode(_Node):
    type: Literal["goto"]
    target: NodeRef


class HangupNode(_Node):
    type: Literal["hangup"]
    prompt: Prompt | None = None


NodeSpec = Annotated[
    PlayNode | SayNode | MenuNode | GatherNode | SurveyNode | ConditionNode | SetNode | BusinessHoursNode | HttpNode
    | QueueNode | VoicemailNode | TransferNode | SubflowNode | SensitiveNode | GotoNode | HangupNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("play", "say", "menu", "gather", "survey", "condition", "set", "business_hours", "http", "queue",
              "voicemail", "transfer", "subflow", "sensitive", "goto", "hangup")


class Section(_Strict):
    start: NodeRef
    nodes: list[NodeSpec] = Field(min_length=1, max_length=500)


class FlowDocument(Section):
    name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=500)
    voice: Literal["en", "zh", "ko"] = "en"
    subflows: dict[Annotated[str, Field(pattern=NAME)], Section] = Field(default_factory=dict, max_length=50)
