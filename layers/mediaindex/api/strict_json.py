"""JSON request bodies, read strictly. Python's `json` takes the last of duplicated keys, and
NaN and Infinity, without a word; here each of these is invalid JSON (400 `invalid_json`, the
message says why), as are a lone surrogate, escaped or as raw bytes (no store can encode it;
`json` decodes bytes with surrogatepass), a number past a float's range (1e400 became inf, stored
as null), an integer past Python's 4300 digits and nesting deeper than the parser's recursion
limit (both were 500s or "error parsing the body"). Routers use `StrictJsonRoute`, so FastAPI's
own body parsing goes through `loads`; a route that parses its body itself calls `loads`.

`StrictJsonRoute` also runs a plain `def` endpoint on the thread pool from a coroutine of its own:
FastAPI checks a sync endpoint's return value against its response model in a second thread-pool
hop, which for a coroutine it does inline (the check takes microseconds, the hop a tenth of a
millisecond of every request)."""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from mediaindex.api.lazy_routes import LazyRoute

# A \uD800..\uDFFF escape: how a decoded JSON text can still carry a surrogate (its bytes were
# decoded strictly, so raw surrogate bytes never get this far).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _invalid(f"the number {text[:40]} is out of range")
    return value


def loads(raw: bytes | str) -> Any:
    """Parses a request body; json.JSONDecodeError (whose `msg` says why) for anything invalid."""
    try:
        # Bytes strictly (json.loads would pass surrogates); a str (a form field) as it came,
        # refused if it holds a lone surrogate itself.
        text = raw.decode(json.detect_encoding(raw)) if isinstance(raw, bytes) else raw
        if isinstance(raw, str):
            raw.encode("utf-8")
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _invalid("the JSON is nested too deeply") from None
    except ValueError as e:  # undecodable bytes, an integer of over 4300 digits
        raise _invalid(str(e)) from None
    if _SURROGATE_ESCAPE.search(text):
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


def in_one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function endpoint as a coroutine that runs it on the thread pool. `functools.wraps`
    keeps its signature, annotations and name, which FastAPI reads for parameters, the response
    model and the OpenAPI operation; generators (streamed answers) and coroutines stay as they are."""
    if not inspect.isfunction(endpoint) or (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def run(**values: Any) -> Any:
        return await run_in_threadpool(endpoint, **values)

    return run


class StrictJsonRoute(LazyRoute):
    """A route whose JSON body is parsed by `loads`, and whose sync endpoint costs one hop
    (built on first use, as every LazyRoute)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_one_hop(endpoint), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
