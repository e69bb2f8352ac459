"""pydantic v2 as tomcat-cd validates with it: strict types, unknown keys refused, camelCase
names, and every error turned into the one-line problem users already know
("replicas.master: must be an integer, got a string").

The field types here carry their own message and their JSON Schema, so a model's schema is
what an editor checks while a domain file is typed, and its errors are what `cdctl check`
prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Mapping, TypeVar, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from tomcat_cd.core.errors import Problems
from tomcat_cd.core.fields import type_name

OWN_ERROR = "tomcat_cd"


class Strict(BaseModel):
    """The base of every file model: strict, closed, camelCase, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=False)


def own_error(message: str) -> PydanticCustomError:
    """An error whose message is already the final text of the problem line."""
    return PydanticCustomError(OWN_ERROR, message.replace("{", "{{").replace("}", "}}"))


@dataclass(frozen=True)
class Matches:
    """`Annotated[str, Matches(pattern, what)]`: the whole string matches; told as `what`.
    With `name`, it is a mapping's key (an environment variable's name, ...)."""

    pattern: re.Pattern[str]
    what: str
    name: bool = False

    def check(self, value: str) -> str:
        if not self.pattern.fullmatch(value):
            raise own_error(f"name must be {self.what}" if self.name else f"must be {self.what}, got {value!r}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "pattern": f"^(?:{self.pattern.pattern})$", "description": self.what}


@dataclass(frozen=True)
class Between:
    """`Annotated[int, Between(low, high)]`."""

    low: int
    high: int

    def check(self, value: int) -> int:
        if not self.low <= value <= self.high:
            raise own_error(f"must be between {self.low} and {self.high}, got {value}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class OneOf:
    """`Annotated[str, OneOf(choices)]`: one of a few words, checked before the type (so that
    `target: 3` is told as a wrong choice, not a wrong type)."""

    choices: tuple[str, ...]

    def check(self, value: Any) -> Any:
        if value not in self.choices:
            what = " or ".join(self.choices) if len(self.choices) == 2 else f"one of {', '.join(self.choices)}"
            raise own_error(f"must be {what}, got {value!r}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "enum": list(self.choices)}


def _list_of_strings(value: Any) -> Any:
    if not isinstance(value, list):
        raise own_error(f"must be a list of strings, got {type_name(value)}")
    return value


# A list of strings, told as such when it is something else (`hosts: 10.0.0.1 db`).
AS_STRING_LIST = BeforeValidator(_list_of_strings)


def _int_text(value: Any) -> Any:
    return int(value) if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value) else value


def _bool_text(value: Any) -> Any:
    return value == "true" if value in ("true", "false") else value


def json_text_decoded(values: Any, keys: tuple[str, ...]) -> Any:
    """`values` with each of `keys` that holds JSON text decoded: Pulumi hands a program its
    structured config as JSON text. For a model's `mode="before"` validator."""
    if not isinstance(values, Mapping):
        return values
    decoded = dict(values)
    for key in keys:
        if isinstance(decoded.get(key), str):
            try:
                decoded[key] = json.loads(decoded[key])
            except ValueError:
                pass  # not JSON: the field's own type check names what it is
    return decoded


# An integer or a boolean that Pulumi may hand over as text: it quotes every scalar of a
# stack file it rewrites, and the program gets "true" for true.
TextInt = Annotated[int, BeforeValidator(_int_text)]
TextBool = Annotated[bool, BeforeValidator(_bool_text)]

_TYPE_MESSAGES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "float_type": "a number",
}

M = TypeVar("M", bound=BaseModel)


def keys_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's keys as a file spells them -> its fields."""
    generator = model.model_config.get("alias_generator")
    return {info.alias or (generator(name) if callable(generator) else name): info
            for name, info in model.model_fields.items()}


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class of the mapping at `loc` (to name its known keys), if it is one."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: the list's field already named the item's model
        fields = keys_of(current)
        found = _model_of(fields[part].annotation) if part in fields else None
        if not (isinstance(found, type) and issubclass(found, BaseModel)):
            return None
        current = found
    return current


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside an annotation such as `Probe | None`, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation if get_origin(annotation) is None else None


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f"{'.' if path and not path.endswith(':') else ''}{part}"
    return path


def problems_of(error: ValidationError, model: type[BaseModel], problems: Problems, prefix: str = "") -> None:
    """Each of pydantic's errors as one problem: the field's path and today's words."""
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        kind, value = detail["type"], detail.get("input")
        where = field_path(loc, prefix)
        if kind == OWN_ERROR:
            message = detail["msg"]
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            holder = _model_at(model, loc[:-1])
            known = sorted(keys_of(holder)) if holder else []
            message = f"unknown key (known keys: {', '.join(known)})"
        elif kind in _TYPE_MESSAGES:
            message = f"must be {_TYPE_MESSAGES[kind]}, got {type_name(value)}"
        else:
            message = detail["msg"]
        problems.add(where, message)


def validated(model: type[M], data: Mapping[str, Any], problems: Problems, prefix: str = "") -> M | None:
    """The model of `data`, or None with every error added to `problems`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems_of(error, model, problems, prefix)
        return None

