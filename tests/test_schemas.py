"""What clients see of the server, pinned: every tool's title, description, annotations, input and output schema,
the instructions, the resources and the prompts, as ``tools/list`` and friends publish them.

A refactor or an SDK upgrade that changes any of it fails here. When a change is meant, regenerate with
``pytest tests/test_schemas.py --inline-snapshot=fix`` and review the diff like code.
"""

from typing import Any

import anyio
from conftest import make_settings
from inline_snapshot import snapshot
from mcp import Client

from sora_mcp.server import build_server


def published() -> dict[str, Any]:
    """Sync on purpose: inline-snapshot tracks comparisons in the test's own context, which an anyio-run async test
    does not share (its comparisons would pass unchecked)."""
    return anyio.run(_published)


async def _published() -> dict[str, Any]:
    async with Client(build_server(make_settings()), mode="legacy") as client:
        tools = (await client.list_tools()).tools
        templates = (await client.list_resource_templates()).resource_templates
        resources = (await client.list_resources()).resources
        prompts = (await client.list_prompts()).prompts
        instructions = client.instructions
    return {
        "tools": {tool.name: tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools},
        "resources": [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in [*templates, *resources]],
        "prompts": [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in prompts],
        "instructions": instructions,
    }


def test_create_video_as_published() -> None:
    assert published()["tools"]["create_video"] == snapshot(
        {
            "name": "create_video",
            "title": "Create a video",
            "description": """\
Start generating a video with Sora-2 from a text prompt (and optional reference images).

Costs the user money: call it only when the user asks for a video, once per video. Returns a task_id at
once with status "queued" (or, with wait_seconds, after waiting up to that long); rendering takes
minutes. Next, call get_task(task_id, wait_seconds=50) until the status is "completed" (then give the
user video_url) or "failed". If a call fails or times
out, do not simply call create_video again: the error says whether a task may already exist, and
list_tasks shows every task created. The same request again within minutes returns the earlier task
("reused": true) instead of creating another.\
""",
            "inputSchema": {
                "properties": {
                    "prompt": {
                        "description": "What the video shows: subject, action, setting, camera, style. Write @username to cast a character made with create_character.",
                        "title": "Prompt",
                        "type": "string",
                    },
                    "model": {
                        "default": "sora-2",
                        "description": "sora-2 (10 or 15 s) or sora-2-pro (higher quality; 10, 15 or 25 s).",
                        "enum": ["sora-2", "sora-2-pro"],
                        "title": "Model",
                        "type": "string",
                    },
                    "duration": {
                        "anyOf": [{"enum": [10, 15, 25], "type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Length in seconds: 10 or 15 with sora-2; 10, 15 or 25 with sora-2-pro.",
                        "title": "Duration",
                    },
                    "size": {
                        "anyOf": [{"enum": ["16:9", "9:16", "1:1"], "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Aspect ratio: 16:9, 9:16 or 1:1.",
                        "title": "Size",
                    },
                    "images": {
                        "anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                        "default": None,
                        "description": "Reference images for image-to-video (PNG, JPEG, WebP or GIF): public http(s) URLs, data:image/...;base64 URIs, or files on the computer running this server: absolute paths, ~/... or file:///... URIs, inside the folders SORA_FILE_ROOTS allows (by default the user's home folder on stdio, none over HTTP).",
                        "title": "Images",
                    },
                    "style": {
                        "anyOf": [
                            {
                                "enum": ["comic", "news", "anime", "selfie", "nostalgic", "thanksgiving"],
                                "type": "string",
                            },
                            {"type": "null"},
                        ],
                        "default": None,
                        "description": "Visual style preset.",
                        "title": "Style",
                    },
                    "watermark": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Add the Sora watermark (gateway default: no).",
                        "title": "Watermark",
                    },
                    "private": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Do not publish the video; it then cannot be remixed.",
                        "title": "Private",
                    },
                    "storyboard": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Storyboard mode, for finer control of shots.",
                        "title": "Storyboard",
                    },
                    "thumbnail": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Also generate a thumbnail image.",
                        "title": "Thumbnail",
                    },
                    "allow_duplicate": {
                        "default": False,
                        "description": "Create a new task even though an identical request was made in the last minutes (normally that earlier task is returned, marked reused). Costs money again: only when the user asks for another.",
                        "title": "Allow Duplicate",
                        "type": "boolean",
                    },
                    "wait_seconds": {
                        "default": 0,
                        "description": "After creating, wait up to this many seconds for the task to finish (as get_task does), reporting progress; the task_id comes back either way. 0 (default) returns at once.",
                        "maximum": 50,
                        "minimum": 0,
                        "title": "Wait Seconds",
                        "type": "integer",
                    },
                    "confirm_quote": {
                        "anyOf": [{"maxLength": 100, "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Only after the user approved a quote: the quote_id of a result with confirmation_required, with the same arguments as that call.",
                        "title": "Confirm Quote",
                    },
                },
                "required": ["prompt"],
                "type": "object",
                "title": "create_videoArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                        "title": "Task Id",
                    },
                    "kind": {
                        "description": "video or character.",
                        "enum": ["video", "character"],
                        "title": "Kind",
                        "type": "string",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"const": "awaiting_confirmation", "type": "string"},
                        ],
                        "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                        "title": "Status",
                    },
                    "progress": {
                        "default": 0,
                        "description": "0-100.",
                        "maximum": 100,
                        "minimum": 0,
                        "title": "Progress",
                        "type": "integer",
                    },
                    "model": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Model that renders the task.",
                        "title": "Model",
                    },
                    "created_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds.",
                        "title": "Created At",
                    },
                    "completed_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds, once completed.",
                        "title": "Completed At",
                    },
                    "expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the result URLs stop working.",
                        "title": "Expires At",
                    },
                    "eta_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Gateway's estimate of seconds left, when it gives one.",
                        "title": "Eta Seconds",
                    },
                    "video_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The finished video (completed video tasks).",
                        "title": "Video Url",
                    },
                    "thumbnail_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Thumbnail image, when the gateway provides one.",
                        "title": "Thumbnail Url",
                    },
                    "characters": {
                        "description": "Created characters (completed character tasks).",
                        "items": {"$ref": "#/$defs/Character"},
                        "title": "Characters",
                        "type": "array",
                    },
                    "error": {
                        "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                        "default": None,
                        "description": "Reason for a failed task.",
                    },
                    "upstream_status": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The gateway's own status word, e.g. submitted.",
                        "title": "Upstream Status",
                    },
                    "next_poll_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                        "title": "Next Poll Seconds",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to do next, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                    "sandbox": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                        "title": "Sandbox",
                    },
                    "prompt": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The prompt of the request (list_tasks and task resources).",
                        "title": "Prompt",
                    },
                    "submitted_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                        "title": "Submitted At",
                    },
                    "outcome_unknown": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                        "title": "Outcome Unknown",
                    },
                    "reused": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                        "title": "Reused",
                    },
                    "cost_estimate_usd": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                        "title": "Cost Estimate Usd",
                    },
                    "confirmation_required": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                        "title": "Confirmation Required",
                    },
                    "quote_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The quote to pass as confirm_quote once the user agrees.",
                        "title": "Quote Id",
                    },
                    "quote_expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the quote cannot be used.",
                        "title": "Quote Expires At",
                    },
                },
                "required": ["kind", "status"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                "title": "Task",
            },
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html"}},
        }
    )


def test_create_character_as_published() -> None:
    assert published()["tools"]["create_character"] == snapshot(
        {
            "name": "create_character",
            "title": "Create a character",
            "description": """\
Create a reusable character (a "cameo") from 1-3 seconds of a video, to cast it in later videos.

Costs the user money: call it only when the user asks. Give exactly one of url or from_task, plus
timestamps. Returns a task_id at once (or after wait_seconds; characters are often ready within a
minute); then call get_task(task_id, wait_seconds=50) until it is
"completed" and read characters[].mention (like "@name"): writing that mention in a create_video prompt
puts the character in the video. The same request again within minutes returns the earlier task.\
""",
            "inputSchema": {
                "properties": {
                    "timestamps": {
                        "description": "'start,end' in seconds of the clip that shows the character, 1 to 3 s long, e.g. '1,3'.",
                        "title": "Timestamps",
                        "type": "string",
                    },
                    "url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Public URL of a video (with audio) showing the character. Give this or from_task.",
                        "title": "Url",
                    },
                    "from_task": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "task_id of a video made earlier that shows the character. Give this or url.",
                        "title": "From Task",
                    },
                    "model": {
                        "default": "sora-2",
                        "description": "sora-2 or sora-2-pro.",
                        "enum": ["sora-2", "sora-2-pro"],
                        "title": "Model",
                        "type": "string",
                    },
                    "allow_duplicate": {
                        "default": False,
                        "description": "Create a new task even though an identical request was made in the last minutes (normally that earlier task is returned, marked reused). Costs money again: only when the user asks for another.",
                        "title": "Allow Duplicate",
                        "type": "boolean",
                    },
                    "wait_seconds": {
                        "default": 0,
                        "description": "After creating, wait up to this many seconds for the task to finish (as get_task does), reporting progress; the task_id comes back either way. 0 (default) returns at once.",
                        "maximum": 50,
                        "minimum": 0,
                        "title": "Wait Seconds",
                        "type": "integer",
                    },
                    "confirm_quote": {
                        "anyOf": [{"maxLength": 100, "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Only after the user approved a quote: the quote_id of a result with confirmation_required, with the same arguments as that call.",
                        "title": "Confirm Quote",
                    },
                },
                "required": ["timestamps"],
                "type": "object",
                "title": "create_characterArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                        "title": "Task Id",
                    },
                    "kind": {
                        "description": "video or character.",
                        "enum": ["video", "character"],
                        "title": "Kind",
                        "type": "string",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"const": "awaiting_confirmation", "type": "string"},
                        ],
                        "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                        "title": "Status",
                    },
                    "progress": {
                        "default": 0,
                        "description": "0-100.",
                        "maximum": 100,
                        "minimum": 0,
                        "title": "Progress",
                        "type": "integer",
                    },
                    "model": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Model that renders the task.",
                        "title": "Model",
                    },
                    "created_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds.",
                        "title": "Created At",
                    },
                    "completed_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds, once completed.",
                        "title": "Completed At",
                    },
                    "expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the result URLs stop working.",
                        "title": "Expires At",
                    },
                    "eta_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Gateway's estimate of seconds left, when it gives one.",
                        "title": "Eta Seconds",
                    },
                    "video_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The finished video (completed video tasks).",
                        "title": "Video Url",
                    },
                    "thumbnail_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Thumbnail image, when the gateway provides one.",
                        "title": "Thumbnail Url",
                    },
                    "characters": {
                        "description": "Created characters (completed character tasks).",
                        "items": {"$ref": "#/$defs/Character"},
                        "title": "Characters",
                        "type": "array",
                    },
                    "error": {
                        "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                        "default": None,
                        "description": "Reason for a failed task.",
                    },
                    "upstream_status": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The gateway's own status word, e.g. submitted.",
                        "title": "Upstream Status",
                    },
                    "next_poll_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                        "title": "Next Poll Seconds",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to do next, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                    "sandbox": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                        "title": "Sandbox",
                    },
                    "prompt": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The prompt of the request (list_tasks and task resources).",
                        "title": "Prompt",
                    },
                    "submitted_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                        "title": "Submitted At",
                    },
                    "outcome_unknown": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                        "title": "Outcome Unknown",
                    },
                    "reused": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                        "title": "Reused",
                    },
                    "cost_estimate_usd": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                        "title": "Cost Estimate Usd",
                    },
                    "confirmation_required": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                        "title": "Confirmation Required",
                    },
                    "quote_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The quote to pass as confirm_quote once the user agrees.",
                        "title": "Quote Id",
                    },
                    "quote_expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the quote cannot be used.",
                        "title": "Quote Expires At",
                    },
                },
                "required": ["kind", "status"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                "title": "Task",
            },
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html"}},
        }
    )


def test_remix_video_as_published() -> None:
    assert published()["tools"]["remix_video"] == snapshot(
        {
            "name": "remix_video",
            "title": "Remix a video",
            "description": """\
Make a new video from a completed one (task_id from create_video), changed as the prompt says.

Costs the user money like create_video: call it only when the user asks, once per remix. Private
videos cannot be remixed. Returns a new task_id at once; then call get_task(task_id, wait_seconds=50)
with that new id. If a call fails or times out, do not simply call it again: the error says whether a
task may already exist.\
""",
            "inputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The task_id returned by create_video or create_character.",
                        "maxLength": 200,
                        "minLength": 1,
                        "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$",
                        "title": "Task Id",
                        "type": "string",
                    },
                    "prompt": {
                        "description": "How to change the video, e.g. 'make it night and add falling snow'.",
                        "title": "Prompt",
                        "type": "string",
                    },
                    "model": {
                        "default": "sora-2",
                        "description": "sora-2 (10 or 15 s) or sora-2-pro (15 s HD or 25 s).",
                        "enum": ["sora-2", "sora-2-pro"],
                        "title": "Model",
                        "type": "string",
                    },
                    "size": {
                        "anyOf": [{"enum": ["16:9", "9:16", "1:1"], "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Aspect ratio: 16:9, 9:16 or 1:1.",
                        "title": "Size",
                    },
                    "duration": {
                        "anyOf": [{"enum": [10, 15, 25], "type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Length in seconds: 10 or 15 with sora-2; 15 or 25 with sora-2-pro.",
                        "title": "Duration",
                    },
                    "allow_duplicate": {
                        "default": False,
                        "description": "Create a new task even though an identical request was made in the last minutes (normally that earlier task is returned, marked reused). Costs money again: only when the user asks for another.",
                        "title": "Allow Duplicate",
                        "type": "boolean",
                    },
                    "wait_seconds": {
                        "default": 0,
                        "description": "After creating, wait up to this many seconds for the task to finish (as get_task does), reporting progress; the task_id comes back either way. 0 (default) returns at once.",
                        "maximum": 50,
                        "minimum": 0,
                        "title": "Wait Seconds",
                        "type": "integer",
                    },
                    "confirm_quote": {
                        "anyOf": [{"maxLength": 100, "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Only after the user approved a quote: the quote_id of a result with confirmation_required, with the same arguments as that call.",
                        "title": "Confirm Quote",
                    },
                },
                "required": ["task_id", "prompt"],
                "type": "object",
                "title": "remix_videoArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                        "title": "Task Id",
                    },
                    "kind": {
                        "description": "video or character.",
                        "enum": ["video", "character"],
                        "title": "Kind",
                        "type": "string",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"const": "awaiting_confirmation", "type": "string"},
                        ],
                        "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                        "title": "Status",
                    },
                    "progress": {
                        "default": 0,
                        "description": "0-100.",
                        "maximum": 100,
                        "minimum": 0,
                        "title": "Progress",
                        "type": "integer",
                    },
                    "model": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Model that renders the task.",
                        "title": "Model",
                    },
                    "created_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds.",
                        "title": "Created At",
                    },
                    "completed_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds, once completed.",
                        "title": "Completed At",
                    },
                    "expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the result URLs stop working.",
                        "title": "Expires At",
                    },
                    "eta_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Gateway's estimate of seconds left, when it gives one.",
                        "title": "Eta Seconds",
                    },
                    "video_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The finished video (completed video tasks).",
                        "title": "Video Url",
                    },
                    "thumbnail_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Thumbnail image, when the gateway provides one.",
                        "title": "Thumbnail Url",
                    },
                    "characters": {
                        "description": "Created characters (completed character tasks).",
                        "items": {"$ref": "#/$defs/Character"},
                        "title": "Characters",
                        "type": "array",
                    },
                    "error": {
                        "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                        "default": None,
                        "description": "Reason for a failed task.",
                    },
                    "upstream_status": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The gateway's own status word, e.g. submitted.",
                        "title": "Upstream Status",
                    },
                    "next_poll_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                        "title": "Next Poll Seconds",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to do next, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                    "sandbox": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                        "title": "Sandbox",
                    },
                    "prompt": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The prompt of the request (list_tasks and task resources).",
                        "title": "Prompt",
                    },
                    "submitted_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                        "title": "Submitted At",
                    },
                    "outcome_unknown": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                        "title": "Outcome Unknown",
                    },
                    "reused": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                        "title": "Reused",
                    },
                    "cost_estimate_usd": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                        "title": "Cost Estimate Usd",
                    },
                    "confirmation_required": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                        "title": "Confirmation Required",
                    },
                    "quote_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The quote to pass as confirm_quote once the user agrees.",
                        "title": "Quote Id",
                    },
                    "quote_expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the quote cannot be used.",
                        "title": "Quote Expires At",
                    },
                },
                "required": ["kind", "status"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                "title": "Task",
            },
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html"}},
        }
    )


def test_download_video_as_published() -> None:
    assert published()["tools"]["download_video"] == snapshot(
        {
            "name": "download_video",
            "title": "Download a video",
            "description": """\
Save a completed video to a file on the computer running this server and return its path.

Use it when the user wants to keep or open the video: result URLs expire about 24 h after completion.
Free and safe to repeat: an already saved video is not downloaded again, and an existing file with
other content is never overwritten. Files go to SORA_OUTPUT_DIR (by default a 'sora-mcp' folder in the
user's Videos or Downloads folder). Reports progress while downloading. Tell the user the returned path.\
""",
            "inputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The task_id returned by create_video or create_character.",
                        "maxLength": 200,
                        "minLength": 1,
                        "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$",
                        "title": "Task Id",
                        "type": "string",
                    },
                    "include_thumbnail": {
                        "default": False,
                        "description": "Also save the thumbnail image next to the video, when the gateway has one.",
                        "title": "Include Thumbnail",
                        "type": "boolean",
                    },
                    "filename": {
                        "anyOf": [{"maxLength": 200, "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "File name for the video, e.g. 'beach-sunset.mp4' (a plain name, saved in the output folder; '.mp4' is added if missing). Default: '<task_id>.mp4'.",
                        "title": "Filename",
                    },
                },
                "required": ["task_id"],
                "type": "object",
                "title": "download_videoArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The video task the file belongs to.",
                        "title": "Task Id",
                        "type": "string",
                    },
                    "path": {
                        "description": "Absolute path of the saved video file.",
                        "title": "Path",
                        "type": "string",
                    },
                    "bytes": {"description": "File size in bytes.", "title": "Bytes", "type": "integer"},
                    "sha256": {"description": "SHA-256 of the file, hex.", "title": "Sha256", "type": "string"},
                    "content_type": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Media type the media host gave, e.g. video/mp4.",
                        "title": "Content Type",
                    },
                    "thumbnail_path": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Absolute path of the saved thumbnail, when include_thumbnail was set and the gateway has one.",
                        "title": "Thumbnail Path",
                    },
                    "already_downloaded": {
                        "default": False,
                        "description": "True when the same file was already there: nothing was fetched or rewritten.",
                        "title": "Already Downloaded",
                        "type": "boolean",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to tell the user, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                },
                "required": ["task_id", "path", "bytes", "sha256"],
                "type": "object",
                "description": "A video saved by download_video on the machine that runs this server.",
                "title": "DownloadResult",
            },
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": True,
            },
        }
    )


def test_get_task_as_published() -> None:
    assert published()["tools"]["get_task"] == snapshot(
        {
            "name": "get_task",
            "title": "Get task status",
            "description": """\
Read the status of a video or character task, optionally waiting for it to finish.

Free and safe to repeat. Use wait_seconds=50 to wait efficiently instead of polling in a loop; while
the task is still running, call it again (the result's hint and next_poll_seconds say when). A
completed video has video_url (and expires_at; call download_video to keep the file) and, when the
gateway has one, its thumbnail as an image; a completed character has characters[].mention; a failed
task has error.message.\
""",
            "inputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The task_id returned by create_video or create_character.",
                        "maxLength": 200,
                        "minLength": 1,
                        "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$",
                        "title": "Task Id",
                        "type": "string",
                    },
                    "wait_seconds": {
                        "default": 0,
                        "description": "Wait up to this many seconds on the server for the task to finish, reporting progress meanwhile; returns as soon as it completes or fails. 0 reads the status once.",
                        "maximum": 50,
                        "minimum": 0,
                        "title": "Wait Seconds",
                        "type": "integer",
                    },
                },
                "required": ["task_id"],
                "type": "object",
                "title": "get_taskArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                        "title": "Task Id",
                    },
                    "kind": {
                        "description": "video or character.",
                        "enum": ["video", "character"],
                        "title": "Kind",
                        "type": "string",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"const": "awaiting_confirmation", "type": "string"},
                        ],
                        "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                        "title": "Status",
                    },
                    "progress": {
                        "default": 0,
                        "description": "0-100.",
                        "maximum": 100,
                        "minimum": 0,
                        "title": "Progress",
                        "type": "integer",
                    },
                    "model": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Model that renders the task.",
                        "title": "Model",
                    },
                    "created_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds.",
                        "title": "Created At",
                    },
                    "completed_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds, once completed.",
                        "title": "Completed At",
                    },
                    "expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the result URLs stop working.",
                        "title": "Expires At",
                    },
                    "eta_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Gateway's estimate of seconds left, when it gives one.",
                        "title": "Eta Seconds",
                    },
                    "video_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The finished video (completed video tasks).",
                        "title": "Video Url",
                    },
                    "thumbnail_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Thumbnail image, when the gateway provides one.",
                        "title": "Thumbnail Url",
                    },
                    "characters": {
                        "description": "Created characters (completed character tasks).",
                        "items": {"$ref": "#/$defs/Character"},
                        "title": "Characters",
                        "type": "array",
                    },
                    "error": {
                        "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                        "default": None,
                        "description": "Reason for a failed task.",
                    },
                    "upstream_status": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The gateway's own status word, e.g. submitted.",
                        "title": "Upstream Status",
                    },
                    "next_poll_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                        "title": "Next Poll Seconds",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to do next, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                    "sandbox": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                        "title": "Sandbox",
                    },
                    "prompt": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The prompt of the request (list_tasks and task resources).",
                        "title": "Prompt",
                    },
                    "submitted_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                        "title": "Submitted At",
                    },
                    "outcome_unknown": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                        "title": "Outcome Unknown",
                    },
                    "reused": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                        "title": "Reused",
                    },
                    "cost_estimate_usd": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                        "title": "Cost Estimate Usd",
                    },
                    "confirmation_required": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                        "title": "Confirmation Required",
                    },
                    "quote_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The quote to pass as confirm_quote once the user agrees.",
                        "title": "Quote Id",
                    },
                    "quote_expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the quote cannot be used.",
                        "title": "Quote Expires At",
                    },
                },
                "required": ["kind", "status"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                "title": "Task",
            },
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html"}},
        }
    )


def test_list_tasks_as_published() -> None:
    assert published()["tools"]["list_tasks"] == snapshot(
        {
            "name": "list_tasks",
            "title": "List recent tasks",
            "description": """\
List the tasks this server created (from any chat or process on this machine), newest first.

Free. Use it to find a task_id you lost (a new chat, a timeout, a restart) instead of creating the video
again, or to see what is still rendering. Each task has its last known state and a hint; a submission
whose outcome is unknown (outcome_unknown: true, no task_id) may have been billed without an id: tell
the user rather than creating it again. Finished tasks older than the journal's retention (90 days by
default) are no longer listed; unfinished ones and unknown outcomes always are.\
""",
            "inputSchema": {
                "properties": {
                    "limit": {
                        "default": 20,
                        "description": "How many tasks to return, newest first.",
                        "maximum": 100,
                        "minimum": 1,
                        "title": "Limit",
                        "type": "integer",
                    },
                    "kind": {
                        "anyOf": [{"enum": ["video", "character"], "type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Only video or only character tasks.",
                        "title": "Kind",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"type": "null"},
                        ],
                        "default": None,
                        "description": "Only tasks whose last known status is this (unknown: includes lost submissions).",
                        "title": "Status",
                    },
                    "refresh": {
                        "default": False,
                        "description": "Read unfinished tasks from the gateway first, instead of the last known state.",
                        "title": "Refresh",
                        "type": "boolean",
                    },
                },
                "type": "object",
                "title": "list_tasksArguments",
            },
            "outputSchema": {
                "properties": {
                    "tasks": {
                        "description": "Each with its last known state; submissions whose outcome is unknown have no task_id.",
                        "items": {"$ref": "#/$defs/Task"},
                        "title": "Tasks",
                        "type": "array",
                    }
                },
                "required": ["tasks"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "Task": {
                        "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                        "properties": {
                            "task_id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                                "title": "Task Id",
                            },
                            "kind": {
                                "description": "video or character.",
                                "enum": ["video", "character"],
                                "title": "Kind",
                                "type": "string",
                            },
                            "status": {
                                "anyOf": [
                                    {
                                        "enum": ["queued", "in_progress", "completed", "failed", "unknown"],
                                        "type": "string",
                                    },
                                    {"const": "awaiting_confirmation", "type": "string"},
                                ],
                                "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                                "title": "Status",
                            },
                            "progress": {
                                "default": 0,
                                "description": "0-100.",
                                "maximum": 100,
                                "minimum": 0,
                                "title": "Progress",
                                "type": "integer",
                            },
                            "model": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Model that renders the task.",
                                "title": "Model",
                            },
                            "created_at": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Unix seconds.",
                                "title": "Created At",
                            },
                            "completed_at": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Unix seconds, once completed.",
                                "title": "Completed At",
                            },
                            "expires_at": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Unix seconds after which the result URLs stop working.",
                                "title": "Expires At",
                            },
                            "eta_seconds": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway's estimate of seconds left, when it gives one.",
                                "title": "Eta Seconds",
                            },
                            "video_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "The finished video (completed video tasks).",
                                "title": "Video Url",
                            },
                            "thumbnail_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Thumbnail image, when the gateway provides one.",
                                "title": "Thumbnail Url",
                            },
                            "characters": {
                                "description": "Created characters (completed character tasks).",
                                "items": {"$ref": "#/$defs/Character"},
                                "title": "Characters",
                                "type": "array",
                            },
                            "error": {
                                "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                                "default": None,
                                "description": "Reason for a failed task.",
                            },
                            "upstream_status": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "The gateway's own status word, e.g. submitted.",
                                "title": "Upstream Status",
                            },
                            "next_poll_seconds": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                                "title": "Next Poll Seconds",
                            },
                            "hint": {
                                "default": "",
                                "description": "What to do next, in one sentence.",
                                "title": "Hint",
                                "type": "string",
                            },
                            "sandbox": {
                                "anyOf": [{"type": "boolean"}, {"type": "null"}],
                                "default": None,
                                "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                                "title": "Sandbox",
                            },
                            "prompt": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "The prompt of the request (list_tasks and task resources).",
                                "title": "Prompt",
                            },
                            "submitted_at": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                                "title": "Submitted At",
                            },
                            "outcome_unknown": {
                                "anyOf": [{"type": "boolean"}, {"type": "null"}],
                                "default": None,
                                "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                                "title": "Outcome Unknown",
                            },
                            "reused": {
                                "anyOf": [{"type": "boolean"}, {"type": "null"}],
                                "default": None,
                                "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                                "title": "Reused",
                            },
                            "cost_estimate_usd": {
                                "anyOf": [{"type": "number"}, {"type": "null"}],
                                "default": None,
                                "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                                "title": "Cost Estimate Usd",
                            },
                            "confirmation_required": {
                                "anyOf": [{"type": "boolean"}, {"type": "null"}],
                                "default": None,
                                "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                                "title": "Confirmation Required",
                            },
                            "quote_id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "The quote to pass as confirm_quote once the user agrees.",
                                "title": "Quote Id",
                            },
                            "quote_expires_at": {
                                "anyOf": [{"type": "integer"}, {"type": "null"}],
                                "default": None,
                                "description": "Unix seconds after which the quote cannot be used.",
                                "title": "Quote Expires At",
                            },
                        },
                        "required": ["kind", "status"],
                        "title": "Task",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": "Tasks from the journal, newest first.",
                "title": "TaskList",
            },
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html"}},
        }
    )


def test_player_state_as_published() -> None:
    assert published()["tools"]["player_state"] == snapshot(
        {
            "name": "player_state",
            "title": "Player: task state",
            "description": """\
For the in-chat player only (hidden from the model by hosts that show the player): the task's current
state, read from the gateway, as get_task returns it without waiting. Free. Models: use get_task.\
""",
            "inputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The task_id returned by create_video or create_character.",
                        "maxLength": 200,
                        "minLength": 1,
                        "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$",
                        "title": "Task Id",
                        "type": "string",
                    }
                },
                "required": ["task_id"],
                "type": "object",
                "title": "player_stateArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Id to pass to get_task; absent only when outcome_unknown (the gateway's answer never arrived).",
                        "title": "Task Id",
                    },
                    "kind": {
                        "description": "video or character.",
                        "enum": ["video", "character"],
                        "title": "Kind",
                        "type": "string",
                    },
                    "status": {
                        "anyOf": [
                            {"enum": ["queued", "in_progress", "completed", "failed", "unknown"], "type": "string"},
                            {"const": "awaiting_confirmation", "type": "string"},
                        ],
                        "description": "queued, in_progress, completed, failed; unknown for a word we do not know or an unknown outcome; awaiting_confirmation for a paid call's quote (nothing created yet).",
                        "title": "Status",
                    },
                    "progress": {
                        "default": 0,
                        "description": "0-100.",
                        "maximum": 100,
                        "minimum": 0,
                        "title": "Progress",
                        "type": "integer",
                    },
                    "model": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Model that renders the task.",
                        "title": "Model",
                    },
                    "created_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds.",
                        "title": "Created At",
                    },
                    "completed_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds, once completed.",
                        "title": "Completed At",
                    },
                    "expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the result URLs stop working.",
                        "title": "Expires At",
                    },
                    "eta_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Gateway's estimate of seconds left, when it gives one.",
                        "title": "Eta Seconds",
                    },
                    "video_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The finished video (completed video tasks).",
                        "title": "Video Url",
                    },
                    "thumbnail_url": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Thumbnail image, when the gateway provides one.",
                        "title": "Thumbnail Url",
                    },
                    "characters": {
                        "description": "Created characters (completed character tasks).",
                        "items": {"$ref": "#/$defs/Character"},
                        "title": "Characters",
                        "type": "array",
                    },
                    "error": {
                        "anyOf": [{"$ref": "#/$defs/TaskError"}, {"type": "null"}],
                        "default": None,
                        "description": "Reason for a failed task.",
                    },
                    "upstream_status": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The gateway's own status word, e.g. submitted.",
                        "title": "Upstream Status",
                    },
                    "next_poll_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Suggested pause before the next get_task call while the task is not finished; null once it is.",
                        "title": "Next Poll Seconds",
                    },
                    "hint": {
                        "default": "",
                        "description": "What to do next, in one sentence.",
                        "title": "Hint",
                        "type": "string",
                    },
                    "sandbox": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when the task comes from the built-in sandbox (simulated, nothing billed).",
                        "title": "Sandbox",
                    },
                    "prompt": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The prompt of the request (list_tasks and task resources).",
                        "title": "Prompt",
                    },
                    "submitted_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds when this server sent the create request (list_tasks and task resources).",
                        "title": "Submitted At",
                    },
                    "outcome_unknown": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when a create was sent but its answer never arrived: a task may exist, and be billed, without an id.",
                        "title": "Outcome Unknown",
                    },
                    "reused": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "True when create returned this earlier identical request instead of creating (and billing) another.",
                        "title": "Reused",
                    },
                    "cost_estimate_usd": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Estimated cost in USD from the server's configured prices (SORA_PRICES), not the gateway's bill; absent when no price is configured.",
                        "title": "Cost Estimate Usd",
                    },
                    "confirmation_required": {
                        "anyOf": [{"type": "boolean"}, {"type": "null"}],
                        "default": None,
                        "description": "Paid tools: true when nothing was created because the user must approve the cost first: ask them, then call the same tool with the same arguments plus confirm_quote=quote_id.",
                        "title": "Confirmation Required",
                    },
                    "quote_id": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The quote to pass as confirm_quote once the user agrees.",
                        "title": "Quote Id",
                    },
                    "quote_expires_at": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "Unix seconds after which the quote cannot be used.",
                        "title": "Quote Expires At",
                    },
                },
                "required": ["kind", "status"],
                "type": "object",
                "$defs": {
                    "Character": {
                        "description": "A reusable character; put ``mention`` (``@username``) into a create_video prompt to cast it.",
                        "properties": {
                            "id": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Character id (ch_...).",
                                "title": "Id",
                            },
                            "username": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Username the gateway assigned.",
                                "title": "Username",
                            },
                            "display_name": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Human-readable name.",
                                "title": "Display Name",
                            },
                            "profile_picture_url": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Avatar image URL.",
                                "title": "Profile Picture Url",
                            },
                            "mention": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "@username: the text to use in a prompt.",
                                "title": "Mention",
                            },
                        },
                        "title": "Character",
                        "type": "object",
                    },
                    "TaskError": {
                        "description": "Why a task failed, as the gateway put it.",
                        "properties": {
                            "code": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Gateway error code, e.g. generation_failed.",
                                "title": "Code",
                            },
                            "message": {
                                "description": "Gateway error message, passed through.",
                                "title": "Message",
                                "type": "string",
                            },
                        },
                        "required": ["message"],
                        "title": "TaskError",
                        "type": "object",
                    },
                },
                "description": """\
Normalized state of a video or character task, whatever dialect the gateway answered in; for a paid call
that awaits the user's yes, the quote to confirm (``confirmation_required``), with nothing created.\
""",
                "title": "Task",
            },
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": True,
            },
            "_meta": {"ui": {"resourceUri": "ui://sora-mcp/player.html", "visibility": ["app"]}},
        }
    )


def test_inspect_video_as_published() -> None:
    assert published()["tools"]["inspect_video"] == snapshot(
        {
            "name": "inspect_video",
            "title": "Inspect a video",
            "description": """\
Look at a completed video: returns a contact sheet (an image of 6 frames, each labelled with its time), the
file's facts (duration, width, height, frame rate, codec, audio) and findings.

Free: the gateway does not charge for it (it reads the task and fetches the video, or uses the file
download_video saved); nothing is saved. Call it once get_task says "completed", before telling the user the
video is done, and judge the contact sheet against what the user asked for. Findings: "black" (black or
near-black frames), "frozen" (no visible motion), "duration_mismatch" and "aspect_ratio_mismatch" (other
than the create request asked); they come from frames sampled a few times per second (samples_per_second),
so a shorter glitch can be missed, a black moment at the very start or end may be a fade and a frozen one a
deliberately still shot. Tell the user about real problems; a new video costs money: only if they ask.\
""",
            "inputSchema": {
                "properties": {
                    "task_id": {
                        "description": "The task_id returned by create_video or create_character.",
                        "maxLength": 200,
                        "minLength": 1,
                        "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,199}$",
                        "title": "Task Id",
                        "type": "string",
                    }
                },
                "required": ["task_id"],
                "type": "object",
                "title": "inspect_videoArguments",
            },
            "outputSchema": {
                "properties": {
                    "task_id": {"description": "The video task inspected.", "title": "Task Id", "type": "string"},
                    "source": {
                        "description": "downloaded_file: the file download_video saved (path); streamed: fetched from video_url into a temporary file, deleted afterwards.",
                        "enum": ["downloaded_file", "streamed"],
                        "title": "Source",
                        "type": "string",
                    },
                    "path": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The downloaded file inspected, when source is downloaded_file.",
                        "title": "Path",
                    },
                    "duration_seconds": {"title": "Duration Seconds", "type": "number"},
                    "width": {"description": "Frame width in pixels.", "title": "Width", "type": "integer"},
                    "height": {"description": "Frame height in pixels.", "title": "Height", "type": "integer"},
                    "frame_rate": {
                        "anyOf": [{"type": "number"}, {"type": "null"}],
                        "default": None,
                        "description": "Frames per second, when the file declares it.",
                        "title": "Frame Rate",
                    },
                    "codec": {"description": "Video codec, e.g. h264.", "title": "Codec", "type": "string"},
                    "has_audio": {
                        "description": "Whether the file has an audio track.",
                        "title": "Has Audio",
                        "type": "boolean",
                    },
                    "audio_codec": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "Audio codec, e.g. aac, when there is audio.",
                        "title": "Audio Codec",
                    },
                    "requested_duration_seconds": {
                        "anyOf": [{"type": "integer"}, {"type": "null"}],
                        "default": None,
                        "description": "The duration the create request asked for (or its default), from the task journal.",
                        "title": "Requested Duration Seconds",
                    },
                    "requested_aspect_ratio": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "default": None,
                        "description": "The size the create request asked for, e.g. 16:9.",
                        "title": "Requested Aspect Ratio",
                    },
                    "findings": {
                        "description": "Empty when nothing was found.",
                        "items": {"$ref": "#/$defs/VideoFinding"},
                        "title": "Findings",
                        "type": "array",
                    },
                    "samples_per_second": {
                        "description": "How often frames were sampled for the black and frozen findings: shorter glitches can be missed.",
                        "title": "Samples Per Second",
                        "type": "number",
                    },
                    "samples": {
                        "description": "How many frames were sampled (at 64x36 grey levels).",
                        "title": "Samples",
                        "type": "integer",
                    },
                    "contact_sheet": {"$ref": "#/$defs/ContactSheet"},
                    "hint": {
                        "default": "",
                        "description": "What the findings mean and what to do next.",
                        "title": "Hint",
                        "type": "string",
                    },
                },
                "required": [
                    "task_id",
                    "source",
                    "duration_seconds",
                    "width",
                    "height",
                    "codec",
                    "has_audio",
                    "findings",
                    "samples_per_second",
                    "samples",
                    "contact_sheet",
                ],
                "type": "object",
                "$defs": {
                    "ContactSheet": {
                        "description": "The image in this result: frames of the video on a grid, each labelled with its time in seconds.",
                        "properties": {
                            "frame_times_seconds": {
                                "description": "Time of each frame, left to right, top to bottom.",
                                "items": {"type": "number"},
                                "title": "Frame Times Seconds",
                                "type": "array",
                            },
                            "columns": {"title": "Columns", "type": "integer"},
                            "rows": {"title": "Rows", "type": "integer"},
                            "width": {
                                "description": "Width of the image in pixels.",
                                "title": "Width",
                                "type": "integer",
                            },
                            "height": {
                                "description": "Height of the image in pixels.",
                                "title": "Height",
                                "type": "integer",
                            },
                            "bytes": {"description": "Size of the JPEG image.", "title": "Bytes", "type": "integer"},
                        },
                        "required": ["frame_times_seconds", "columns", "rows", "width", "height", "bytes"],
                        "title": "ContactSheet",
                        "type": "object",
                    },
                    "VideoFinding": {
                        "description": "Something in the video worth a look before it is reported as done.",
                        "properties": {
                            "kind": {
                                "description": "black: black or near-black frames; frozen: no visible motion; duration_mismatch, aspect_ratio_mismatch: the video differs from what the create request asked for.",
                                "enum": ["black", "frozen", "duration_mismatch", "aspect_ratio_mismatch"],
                                "title": "Kind",
                                "type": "string",
                            },
                            "start_seconds": {
                                "anyOf": [{"type": "number"}, {"type": "null"}],
                                "default": None,
                                "description": "black, frozen: time of the first sample in the stretch.",
                                "title": "Start Seconds",
                            },
                            "end_seconds": {
                                "anyOf": [{"type": "number"}, {"type": "null"}],
                                "default": None,
                                "description": "black, frozen: time of the last sample in the stretch.",
                                "title": "End Seconds",
                            },
                            "expected": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Mismatches: what the request asked for, e.g. '10 s', '16:9'.",
                                "title": "Expected",
                            },
                            "actual": {
                                "anyOf": [{"type": "string"}, {"type": "null"}],
                                "default": None,
                                "description": "Mismatches: what the video is, e.g. '5 s', '720x1280 (9:16)'.",
                                "title": "Actual",
                            },
                            "note": {
                                "description": "What the finding means, in one sentence.",
                                "title": "Note",
                                "type": "string",
                            },
                        },
                        "required": ["kind", "note"],
                        "title": "VideoFinding",
                        "type": "object",
                    },
                },
                "description": "What inspect_video saw in a completed video: its facts, a contact sheet (the image) and findings.",
                "title": "VideoInspection",
            },
            "annotations": {
                "readOnlyHint": True,
                "destructiveHint": False,
                "idempotentHint": True,
                "openWorldHint": True,
            },
        }
    )


def test_instructions_resources_and_prompts_as_published() -> None:
    data = published()
    assert list(data["tools"]) == snapshot(
        [
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
    )
    assert data["instructions"] == snapshot("""\
Make videos with the Sora-2 models. Creating costs the user real money and takes minutes, so:
1. Call create_video (text or image to video) or create_character (a reusable @character cut from 1-3 s of a
   video) only when the user asks for it. Each returns a task_id at once.
2. Call get_task(task_id, wait_seconds=50) until status is "completed" or "failed"; each call waits on the
   server and reports progress. Follow the result's "hint".
3. Give the user video_url (it expires, about 24 h) or the character's "@username" mention, which casts the
   character when written into a create_video prompt. If the user wants to keep a video, call
   download_video(task_id) before it expires: it saves the file on this computer and returns its path.
4. remix_video(task_id, prompt) makes a new (paid) video from a completed one, when the user asks for changes.
Never create a task again because a call timed out or a task is slow: poll the task_id you have. Lost a task_id
(new chat, timeout, restart)? list_tasks shows every task this server created, newest first. An identical create
within minutes returns the earlier task ("reused": true) instead of paying twice. Paid results carry
cost_estimate_usd: tell the user the estimate. get_spending shows today's and this month's spend and the
budgets. A result with confirmation_required needs the user's yes before you call again with its
confirm_quote.\
""")
    assert data["resources"] == snapshot(
        [
            {
                "name": "task",
                "title": "Task",
                "uriTemplate": "task://{task_id}",
                "description": "A video or character task as JSON (the Task that get_task returns), read from the gateway; its last known state from the journal when the gateway cannot be read.",
                "mimeType": "application/json",
            },
            {
                "name": "saved-video",
                "title": "Saved video",
                "uriTemplate": "sora-video://{task_id}",
                "description": "A video saved by download_video, as MP4 bytes (the in-chat player plays it after the gateway's link expired).",
                "mimeType": "video/mp4",
            },
            {
                "name": "player",
                "title": "Sora player",
                "uri": "ui://sora-mcp/player.html",
                "description": "Shows a task's progress, then plays the video (or shows the character); as a gallery for list_tasks.",
                "mimeType": "text/html;profile=mcp-app",
                "_meta": {
                    "ui": {
                        "csp": {
                            "resourceDomains": [
                                "https://files.dashlyai.cc",
                                "https://files.toapis.com",
                                "https://upload.toapis.com",
                            ]
                        },
                        "prefersBorder": True,
                    }
                },
            },
            {
                "name": "recent_tasks",
                "title": "Recent tasks",
                "uri": "tasks://recent",
                "description": "The 20 latest tasks of the task journal, newest first, with their last known state (the list_tasks result as JSON).",
                "mimeType": "application/json",
            },
            {
                "name": "spending",
                "title": "Spending",
                "uri": "spending://summary",
                "description": "Estimated spend of today and this month (local calendar), by model, against the budgets, with the price table (the get_spending result as JSON). Estimates, not the gateway's bill.",
                "mimeType": "application/json",
            },
        ]
    )
    assert data["prompts"] == snapshot(
        [
            {
                "name": "make_video",
                "title": "Make a video",
                "description": "Turn an idea into a good Sora-2 prompt, then create the video (after the user confirms the cost), wait for it, and deliver or download it.",
                "arguments": [
                    {
                        "name": "idea",
                        "description": "What the video should show, in the user's words.",
                        "required": True,
                    },
                    {
                        "name": "style",
                        "description": "Optional style preset: comic, news, anime, selfie, nostalgic, thanksgiving. Leave empty for none.",
                        "required": False,
                    },
                    {
                        "name": "duration",
                        "description": "Optional length in seconds: 10 or 15 (sora-2), or 25 (sora-2-pro only).",
                        "required": False,
                    },
                ],
            }
        ]
    )
