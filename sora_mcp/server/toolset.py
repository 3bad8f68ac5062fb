"""``ToolSet``: the tools built before the server, so that the JSON schemas of their results are generated once.

A workaround of an SDK cost, kept in its own room: ``MCPServer`` derives every tool's output schema from its return
annotation on its own (``Task`` five times, and once more inside ``TaskList``), a large share of sora-mcp's
start-up cost over the SDK floor (``docs/benchmarks.md``). ``tests/test_toolset.py`` checks every tool equals the
SDK's own registration of the same function, so an SDK upgrade that breaks the workaround fails there.

Generating even once was still the largest single start-up cost, so the schemas also ship precomputed in
``result_schemas.json``, used when it was written by the installed pydantic for models with the same fields (else
they are generated as before). ``SORA_MCP_WRITE_SCHEMAS=1 pytest tests/test_toolset.py`` rewrites it; that test
fails while the file is stale.
"""

import inspect
import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic.json_schema import models_json_schema

from sora_mcp.server.errors import argument_errors, unknown_arguments

F = TypeVar("F", bound=Callable[..., Any])


class ToolSet:
    """Tools added with :meth:`tool`; :meth:`build` gives them their structured output (see the module doc).

    The SDK builds each tool without an output schema; :meth:`build` then generates the schemas of all result
    models in one pass and gives each tool the ``FuncMetadata`` the SDK would have built. Built once per process:
    every server built afterwards (tests build many) shares the same ``Tool`` objects, which hold no state.

    Descriptions are the docstrings with their indentation removed (Python before 3.13 keeps it, and it would
    reach the calling model verbatim).
    """

    def __init__(self) -> None:
        self._tools: list[tuple[Tool, type[BaseModel]]] = []
        self._built: list[Tool] | None = None

    def tool(self, *, title: str, annotations: ToolAnnotations, meta: dict[str, Any] | None = None) -> Callable[[F], F]:
        """Decorator: add the function as a tool. It must return ``Annotated[CallToolResult, Model]``. ``meta``
        is the tool's ``_meta`` (the in-chat player it opens: ``server/player.py``)."""

        def add(fn: F) -> F:
            output_model = result_model(fn)
            description = inspect.cleandoc(fn.__doc__ or "")
            parameters = shipped_parameters(fn)
            if parameters is None:
                built = Tool.from_function(
                    fn,
                    title=title,
                    description=description,
                    annotations=annotations,
                    meta=meta,
                    structured_output=False,
                )
                fields = {name: getattr(built, name) for name in Tool.model_fields}
            else:
                fields = tool_fields(fn, title, description, annotations, meta, parameters)
            self._tools.append((CheckedTool.model_construct(**fields), output_model))
            self._built = None
            return fn

        return add

    def build(self) -> list[Tool]:
        """The tools, each with its structured output: the result model, and that model's JSON schema."""
        if self._built is None:
            models = {model for _, model in self._tools}
            schemas = shipped_schemas(models) or result_schemas(models)
            for tool, model in self._tools:
                if isinstance(tool.fn_metadata, DeferredArguments):  # shipped input schema: arguments on first call
                    tool.fn_metadata = DeferredArguments.of(tool.fn, model, schemas[model], tool.fn_metadata.skip)
                else:
                    arg_model = tool.fn_metadata.arg_model
                    tool.fn_metadata = FuncMetadata(
                        arg_model=arg_model, output_model=model, output_schema=schemas[model]
                    )
            self._built = [tool for tool, _ in self._tools]
        return list(self._built)


class DeferredArguments(FuncMetadata):
    """The SDK's ``FuncMetadata`` whose argument model (a pydantic model per tool, the largest part of building a
    tool) is made on the first call that needs it, not at start-up: ``tools/list`` needs only the shipped input
    schema and the output schema. Used only with a shipped input schema (``shipped_parameters``)."""

    _fn: Callable[..., Any] | None = PrivateAttr(default=None)
    _skip: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def of(
        cls,
        fn: Callable[..., Any],
        output_model: type[BaseModel] | None,
        output_schema: dict[str, Any] | None,
        skip: tuple[str, ...],
    ) -> "DeferredArguments":
        # arg_model is left unset on purpose: __getattr__ makes it on first use.
        metadata = cls.model_construct(  # type: ignore[call-arg]
            output_model=output_model, output_schema=output_schema, wrap_output=False
        )
        metadata._fn, metadata._skip = fn, skip
        return metadata

    @property
    def skip(self) -> tuple[str, ...]:
        return self._skip

    def __getattr__(self, name: str) -> Any:
        if name == "arg_model":  # not set by model_construct: made now, once
            from mcp.server.mcpserver.utilities.func_metadata import func_metadata

            assert self._fn is not None
            arg_model = func_metadata(self._fn, skip_names=self._skip, structured_output=False).arg_model
            self.__dict__["arg_model"] = arg_model
            return arg_model
        return super().__getattr__(name)  # type: ignore[misc]


class CheckedTool(Tool):
    """A tool that refuses arguments it does not know, and reports every argument error in sora-mcp's one style.

    The SDK ignores unknown arguments (``create_video(dration=15)`` would be paid at the default duration) and
    reports its own validation errors as a raw pydantic dump; both are caught here, before the tool body runs.
    Instances are made with ``model_construct`` from the SDK's own ``Tool``, so its schema is never built.
    """

    model_config = ConfigDict(defer_build=True)

    calls_in_flight: ClassVar[int] = 0
    """Tool calls of this process under way: a graceful shutdown lets them finish (``sora_mcp.stdio``)."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        properties = self.parameters.get("properties", {})
        if unknown := arguments.keys() - properties.keys():
            raise ToolError(f"Error executing tool {self.name}: {unknown_arguments(self.name, unknown, properties)}")
        CheckedTool.calls_in_flight += 1
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            # The SDK raises argument validation errors as ToolError from the ValidationError (the only way one
            # gets that cause: our tools raise theirs from None): rewritten in the one style, validated once.
            if isinstance(exc.__cause__, ValidationError):
                problems = argument_errors(self.name, exc.__cause__, arguments)
                raise ToolError(f"Error executing tool {self.name}: {problems}") from None
            raise
        finally:
            CheckedTool.calls_in_flight -= 1


DEFS = "#/$defs/"
"""How pydantic's JSON schemas refer to a shared definition."""


def result_schemas(models: Iterable[type[BaseModel]]) -> dict[type[BaseModel], dict[str, Any]]:
    """Each model's JSON schema (validation mode, as the SDK publishes it), generated together so that a model
    nested in several (``Task`` in ``TaskList``) is generated once. Each schema carries the ``$defs`` it uses."""
    ordered = sorted(models, key=lambda model: model.__name__)
    references, generated = models_json_schema([(model, "validation") for model in ordered])
    definitions: dict[str, Any] = generated.get("$defs", {})
    schemas: dict[type[BaseModel], dict[str, Any]] = {}
    for model in ordered:
        name = references[(model, "validation")]["$ref"].removeprefix(DEFS)
        schema = definitions[name]
        used = _referenced(schema, definitions)
        schemas[model] = {"$defs": {key: definitions[key] for key in sorted(used)}, **schema} if used else schema
    return schemas


SHIPPED_SCHEMAS = "result_schemas.json"


def shipped_schemas(models: Iterable[type[BaseModel]]) -> dict[type[BaseModel], dict[str, Any]] | None:
    """The schemas of ``models`` from ``result_schemas.json``, or None when the file does not describe exactly
    these models (by name and fields) as the installed pydantic generates them."""
    import pydantic

    shipped = _shipped()
    entries = shipped.get("models", {})
    models = list(models)
    if shipped.get("pydantic") != pydantic.VERSION or set(entries) != {model.__name__ for model in models}:
        return None
    if any(entries[model.__name__]["fields"] != list(model.model_fields) for model in models):
        return None
    return {model: entries[model.__name__]["schema"] for model in models}


def schemas_document(models: Iterable[type[BaseModel]], tools: Iterable[Tool] = ()) -> dict[str, Any]:
    """What ``result_schemas.json`` holds: the pydantic version, each result model's fields and schema, and each
    tool's input schema under the signature it was generated from."""
    import pydantic

    generated = result_schemas(models)
    entries = {
        model.__name__: {"fields": list(model.model_fields), "schema": schema}
        for model, schema in sorted(generated.items(), key=lambda item: item[0].__name__)
    }
    inputs = {tool.name: {"signature": signature(tool.fn), "schema": tool.parameters} for tool in tools}
    return {"pydantic": pydantic.VERSION, "mcp": _mcp_version(), "models": entries, "inputs": inputs}


@cache
def _mcp_version() -> str:
    """The installed MCP SDK's version: it builds the argument models the input schemas come from."""
    from importlib.metadata import version

    return version("mcp")


@cache
def _shipped() -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(Path(__file__).with_name(SHIPPED_SCHEMAS).read_bytes())
    except (OSError, ValueError):
        return {}
    return document


def signature(fn: Callable[..., Any]) -> str:
    """What a tool's input schema is generated from, as text: its parameters' names, annotations (with their
    ``Field`` descriptions and bounds) and defaults. Equal text, equal schema (for one pydantic version)."""
    annotations = {k: v for k, v in fn.__annotations__.items() if k != "return"}
    text = repr((fn.__name__, annotations, fn.__defaults__ or (), fn.__kwdefaults__ or {}))
    return _ADDRESS.sub("", text)  # validators' reprs name functions by their address, which differs per process


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def shipped_parameters(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """The input schema shipped for the tool ``fn``, when written by the installed pydantic from the same
    signature; else None (the SDK then generates it)."""
    import pydantic

    shipped = _shipped()
    entry = shipped.get("inputs", {}).get(fn.__name__)
    if shipped.get("pydantic") != pydantic.VERSION or entry is None or entry["signature"] != signature(fn):
        return None
    if shipped.get("mcp") != _mcp_version():
        return None
    schema: dict[str, Any] = entry["schema"]
    return schema


def tool_fields(
    fn: Callable[..., Any],
    title: str,
    description: str,
    annotations: ToolAnnotations,
    meta: dict[str, Any] | None,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """The fields ``Tool.from_function`` gives a tool, with its input schema taken as given instead of generated
    (``tests/test_toolset.py`` checks the result equals the SDK's own, field by field)."""
    from mcp.server.mcpserver.resolve import build_resolver_plans, find_resolved_parameters
    from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
    from mcp.shared._callable_inspection import is_async_callable

    context_kwarg = find_context_parameter(fn)
    resolved = find_resolved_parameters(fn)
    skip = (*([context_kwarg] if context_kwarg is not None else []), *resolved)
    metadata = DeferredArguments.of(fn, None, None, skip)
    names = set(parameters.get("properties", {}))  # the arguments' wire names (alias, else name), as the SDK's
    return {
        "fn": fn,
        "name": fn.__name__,
        "title": title,
        "description": description,
        "parameters": parameters,
        "fn_metadata": metadata,
        "is_async": is_async_callable(fn),
        "context_kwarg": context_kwarg,
        "resolved_params": dict(resolved),
        "resolver_plans": build_resolver_plans(resolved, names),
        "annotations": annotations,
        "icons": None,
        "meta": meta,
    }


def _referenced(node: Any, definitions: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """Names of the definitions ``node`` refers to, directly or through other definitions."""
    found = set() if found is None else found
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(DEFS):
            name = reference.removeprefix(DEFS)
            if name not in found:
                found.add(name)
                _referenced(definitions[name], definitions, found)
        for value in node.values():
            _referenced(value, definitions, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, definitions, found)
    return found


def result_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """``Model`` from a tool's ``-> Annotated[CallToolResult, Model]`` (the SDK's spelling of "returns a
    ``CallToolResult`` whose structured content is a ``Model``")."""
    annotation = fn.__annotations__.get("return")
    arguments = get_args(annotation) if get_origin(annotation) is Annotated else ()
    model = arguments[1] if len(arguments) == 2 and arguments[0] is CallToolResult else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"tool {fn.__name__} must return Annotated[CallToolResult, <a pydantic model>]")
    return model
