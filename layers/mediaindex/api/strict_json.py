"""JSON request bodies, read strictly. Python's `json` takes the last of duplicated keys, and
NaN and Infinity, without a word; here each of these is invalid JSON (400 `invalid_json`, the
message says why), as are a lone surrogate escape (no store can encode it), an integer past
Python's 4300 digits and nesting deeper than the parser's recursion limit (both were 500s or
"error parsing the body"). Routers use `StrictJsonRoute`, so FastAPI's own body parsing goes
through `loads`; a route that parses its body itself calls `loads`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# A \uD800..\uDFFF escape: the only way a JSON text can carry a surrogate (raw UTF-8 cannot).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _invalid(message: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, "", 0)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _invalid(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number")


def loads(raw: bytes | str) -> Any:
    """Parses a request body; json.JSONDecodeError (whose `msg` says why) for anything invalid."""
    try:
        value = json.loads(raw, object_pairs_hook=_object, parse_constant=_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _invalid("the JSON is nested too deeply") from None
    except ValueError as e:  # undecodable bytes, an integer of over 4300 digits
        raise _invalid(str(e)) from None
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if _SURROGATE_ESCAPE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid("a string holds a lone surrogate escape") from None
    return value


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed by `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
