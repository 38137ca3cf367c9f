"""The type of a JSON document, as the store parses and writes them.

``JSONValue`` is what ``json.loads`` returns; ``JSONObject`` is a document,
a JSON object at its top. A parsed document is typed so that its reader
narrows it (``isinstance``) or converts it to a model at once, instead of
indexing into an ``Any``. What is written is typed ``Mapping[str, object]``
instead: ``json.dumps`` takes any mapping of JSON values, a ``TypedDict``
included (which a ``dict[str, JSONValue]`` parameter would refuse).
"""

from __future__ import annotations

from typing import TypeAlias

JSONValue: TypeAlias = (
    "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
)
JSONObject: TypeAlias = "dict[str, JSONValue]"
