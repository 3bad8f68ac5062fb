"""The ``ToolSet`` workaround (``server/toolset.py``) against the SDK's own tool registration.

If an SDK upgrade changes how ``MCPServer`` builds a tool (parameters, output schema, wrapping, the context
argument), the equality test here fails, and only here: the workaround is then updated or dropped.
"""

import json
import os
from pathlib import Path
from typing import Annotated, Any

import pytest
from conftest import make_settings
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult

from sora_mcp.models import Task
from sora_mcp.server import build_server, toolset
from sora_mcp.server.tools import READ_ANNOTATIONS, TOOLS
from sora_mcp.server.toolset import (
    SHIPPED_SCHEMAS,
    ToolSet,
    result_model,
    result_schemas,
    schemas_document,
    shipped_parameters,
    shipped_schemas,
)


def test_tools_are_built_exactly_as_the_sdk_builds_them(tmp_path: Path) -> None:
    """ToolSet derives each output schema once per model instead of once per tool; everything a client sees or
    the SDK validates with must equal what MCPServer's own registration derives from the same function."""
    server = build_server(make_settings(state_dir=tmp_path))
    built = server._tool_manager.list_tools()  # the registered Tool objects; no public accessor
    assert [tool.name for tool in built] == [
        "create_video",
        "create_character",
        "remix_video",
        "download_video",
        "get_task",
        "list_tasks",
        "get_spending",
        "player_state",
        "inspect_video",
    ]
    for tool in built:
        sdk = sdk_tool(tool)
        for field in ("name", "title", "description", "meta", "is_async", "resolved_params"):
            assert getattr(tool, field) == getattr(sdk, field), (tool.name, field)
        assert plans(tool) == plans(sdk), tool.name
        # The argument model (made on the first call when the input schema ships) validates as the SDK's does.
        assert tool.fn_metadata.arg_model.model_json_schema(by_alias=True) == sdk.parameters, tool.name
        assert list(tool.fn_metadata.arg_model.model_fields) == list(sdk.fn_metadata.arg_model.model_fields)
        assert tool.parameters == sdk.parameters, tool.name
        assert tool.output_schema == sdk.output_schema, tool.name
        assert tool.fn_metadata.output_model is sdk.fn_metadata.output_model, tool.name
        assert tool.fn_metadata.wrap_output is sdk.fn_metadata.wrap_output is False
        assert tool.context_kwarg == sdk.context_kwarg == "ctx"


def plans(tool: Tool) -> dict[int, Any]:
    """A tool's resolver plans, comparable (the SDK's plan objects compare by identity)."""
    return {
        key: {**vars(plan), "params": {n: vars(p) for n, p in plan.params.items()}}
        for key, plan in tool.resolver_plans.items()
    }


def sdk_tool(tool: Tool) -> Tool:
    """The SDK's own registration of ``tool``'s function (its input schema generated, not shipped)."""
    return Tool.from_function(
        tool.fn, title=tool.title, description=tool.description, annotations=tool.annotations, meta=tool.meta
    )


def test_a_tool_whose_signature_changed_gets_its_input_schema_generated() -> None:
    """A shipped input schema is used only for the very signature it was generated from."""

    async def get_task(task_id: str) -> Annotated[CallToolResult, Task]:
        raise NotImplementedError

    assert shipped_parameters(get_task) is None
    assert shipped_parameters(TOOLS.build()[0].fn) is not None


def test_a_tool_must_declare_its_result_model() -> None:
    """ToolSet reads the result model from ``Annotated[CallToolResult, Model]``; anything else is refused at
    registration, not discovered on the first call."""
    tools = ToolSet()

    async def unannotated(task_id: str) -> CallToolResult:
        return CallToolResult(content=[])

    with pytest.raises(TypeError, match=r"unannotated must return Annotated\[CallToolResult, <a pydantic model>\]"):
        tools.tool(title="x", annotations=READ_ANNOTATIONS)(unannotated)
    assert tools.build() == []


def test_every_server_shares_the_tools_built_once(tmp_path: Path) -> None:
    """Two servers register the same Tool objects: the schemas are generated once per process, not per server."""
    first = build_server(make_settings(state_dir=tmp_path))._tool_manager.list_tools()
    second = build_server(make_settings(state_dir=tmp_path))._tool_manager.list_tools()
    assert [id(tool) for tool in first] == [id(tool) for tool in second] == [id(tool) for tool in TOOLS.build()]


def test_the_shipped_result_schemas_are_what_pydantic_generates() -> None:
    """result_schemas.json (read at start-up instead of generating the schemas) matches the models and the
    installed pydantic; SORA_MCP_WRITE_SCHEMAS=1 rewrites it after a model changes."""
    models = {result_model(tool.fn) for tool in TOOLS.build()}
    generated = [sdk_tool(tool) for tool in TOOLS.build()]  # input schemas as the SDK generates them
    document = schemas_document(models, generated)
    target = Path(toolset.__file__).with_name(SHIPPED_SCHEMAS)
    if os.environ.get("SORA_MCP_WRITE_SCHEMAS") == "1":
        target.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    shipped = json.loads(target.read_text(encoding="utf-8"))
    # The models and their schemas must match. A newer pydantic that generates the same schemas passes; start-up
    # then generates them (the file is for the pydantic that wrote it) until the file is rewritten.
    stale = "sora_mcp/server/result_schemas.json is stale: run SORA_MCP_WRITE_SCHEMAS=1 pytest tests/test_toolset.py"
    assert shipped["models"] == document["models"], stale
    assert shipped["inputs"] == document["inputs"], stale
    if shipped["pydantic"] == document["pydantic"]:
        assert shipped_schemas(models) == result_schemas(models)


def test_stale_shipped_schemas_are_ignored_and_the_schemas_generated() -> None:
    from sora_mcp.models import DownloadResult, Task

    assert shipped_schemas({Task, DownloadResult}) is None  # not the shipped set of models

    class Task2(Task):
        extra: int = 0

    Task2.__name__ = "Task"
    models = {result_model(tool.fn) for tool in TOOLS.build()} - {Task} | {Task2}
    assert shipped_schemas(models) is None  # a field the file does not know
