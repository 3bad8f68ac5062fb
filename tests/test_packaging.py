"""Packaging metadata stays true: server.json, the README's tables, pyproject.toml and the code agree."""

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from jsonschema import Draft7Validator, FormatChecker  # type: ignore[import-untyped]  # no types-jsonschema
from mcp import Client

import sora_mcp
from sora_mcp.__main__ import main
from sora_mcp.config import ENV_PREFIX, SECRET_FIELDS, Settings
from sora_mcp.server import SERVER_NAME, build_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[1]
# The MCP registry's server.json schema (draft-07), as the project's shared reference keeps it: a byte-exact copy
# of schemas/2025-12-11/server.schema.json from github.com/modelcontextprotocol/static, which backs
# https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json. CI clones the repository with
# shared/ beside it; tests/data/server.schema.json is a copy of that same file (same sha256), used when the
# shared tree is absent.
SHARED_SCHEMA = Path(__file__).parents[2] / "shared/reference/server.schema.json"
VENDORED_SCHEMA = Path(__file__).parent / "data/server.schema.json"
SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"


def load_json(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def server_json() -> dict[str, Any]:
    return load_json(ROOT / "server.json")


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def readme_section(title: str) -> str:
    """The README text under ``## title`` up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme(), re.MULTILINE | re.DOTALL)
    assert match is not None, f"README has no '## {title}' section"
    return match.group(1)


def table_keys(section: str) -> list[str]:
    """The backticked names in the first column of the first table in ``section``."""
    table = re.search(r"^\|.*?(?=^[^|]|\Z)", section, re.MULTILINE | re.DOTALL)
    assert table is not None, "no table in this section"
    return re.findall(r"^\| `([^`]+)` \|", table.group(0), re.MULTILINE)


SETTINGS_VARIABLES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_the_vendored_schema_is_the_pinned_registry_schema() -> None:
    """tests/data/server.schema.json is byte-identical to the pinned 2025-12-11 schema (and to shared/, if there)."""
    vendored = VENDORED_SCHEMA.read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == SCHEMA_SHA256
    if SHARED_SCHEMA.exists():
        assert SHARED_SCHEMA.read_bytes() == vendored


def test_server_json_validates_against_the_registry_schema() -> None:
    """server.json is a valid MCP registry entry (draft-07 with format checks) for the schema it names."""
    schema = load_json(SHARED_SCHEMA if SHARED_SCHEMA.exists() else VENDORED_SCHEMA)
    Draft7Validator.check_schema(schema)
    document = server_json()
    errors = sorted(Draft7Validator(schema, format_checker=FormatChecker()).iter_errors(document), key=str)
    assert [f"{list(error.absolute_path)}: {error.message}" for error in errors] == []
    assert document["$schema"] == schema["$id"]
    broken = document | {"name": "sora-mcp", "description": "x" * 101}
    assert len(list(Draft7Validator(schema, format_checker=FormatChecker()).iter_errors(broken))) == 2


def test_versions_agree_everywhere() -> None:
    """server.json's version, its PyPI package's version and sora_mcp.__version__ are one version."""
    document = server_json()
    [package] = document["packages"]
    assert document["version"] == sora_mcp.__version__
    assert package["version"] == sora_mcp.__version__
    assert (package["registryType"], package["identifier"]) == ("pypi", pyproject()["project"]["name"])
    assert package["transport"] == {"type": "stdio"}


def test_the_readme_proves_ownership_of_the_registry_name() -> None:
    """The README (the PyPI description) carries ``mcp-name: <server.json name>``, as the registry requires."""
    assert f"<!-- mcp-name: {server_json()['name']} -->" in readme()


def test_server_json_lists_exactly_the_variables_the_settings_read() -> None:
    """environmentVariables are SORA_<field> per Settings field, with the code's defaults; exactly the secrets
    (the gateway key, the HTTP token, the state key, the database URL with its password) are secret."""
    [package] = server_json()["packages"]
    variables = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert set(variables) == SETTINGS_VARIABLES
    secrets = {name for name, variable in variables.items() if variable.get("isSecret")}
    expected_secrets = {"SORA_API_KEY", "SORA_MCP_AUTH_TOKEN", "SORA_MCP_STATE_KEY", "SORA_DATABASE_URL"}
    assert secrets == {ENV_PREFIX + name.upper() for name in SECRET_FIELDS} == expected_secrets
    for name, field in Settings.model_fields.items():
        variable = variables[ENV_PREFIX + name.upper()]
        assert variable["description"]
        if "default" not in variable:
            assert field.default in (None, ()), name  # no value, or an empty list
        elif variable["format"] == "number":
            assert float(variable["default"]) == field.default, name
        elif variable["format"] == "boolean":
            assert variable["default"] == str(field.default).lower(), name
        elif isinstance(field.default, tuple):  # a list setting: comma-separated
            assert tuple(variable["default"].split(",")) == field.default, name
        elif field.default_factory is not None:  # SORA_PRICES: a JSON object
            assert json.loads(variable["default"]) == field.default_factory(), name  # type: ignore[call-arg]
        else:
            assert variable["default"] == field.default, name


def test_the_readme_configuration_table_lists_exactly_the_settings() -> None:
    """The README's configuration table documents every SORA_* variable the server reads, and no other."""
    names = table_keys(readme_section("Configuration"))
    assert len(names) == len(set(names))
    assert set(names) == SETTINGS_VARIABLES


async def test_the_readme_tool_table_lists_exactly_the_served_tools() -> None:
    """The README's tool table names exactly the tools tools/list returns."""
    async with Client(build_server(make_settings())) as client:
        served = sorted(tool.name for tool in (await client.list_tools()).tools)
        info = client.server_info
    names = table_keys(readme_section("Tools"))
    assert len(names) == len(set(names))
    assert sorted(names) == served
    assert info is not None
    assert (info.name, info.version) == (SERVER_NAME, sora_mcp.__version__)


def test_the_version_is_read_from_the_package_and_the_command_is_main() -> None:
    """pyproject.toml takes its version from sora_mcp/__init__.py, and `sora-mcp` runs sora_mcp.__main__:main."""
    config = pyproject()
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    assert config["tool"]["hatch"]["version"]["path"] == "sora_mcp/__init__.py"
    assert re.search(r'^__version__ = "[^"]+"$', (ROOT / "sora_mcp/__init__.py").read_text(), re.MULTILINE)
    assert config["project"]["scripts"] == {"sora-mcp": "sora_mcp.__main__:main"}
    assert callable(main)
