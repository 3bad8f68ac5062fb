"""remix_video: the request model, the client call under the create rule, and the MCP tool."""

import re

import pytest
from conftest import API_KEY
from fake_gateway import FakeGateway
from mcp import Client
from mcp.types import TextContent
from pydantic import ValidationError

from sora_mcp.client import SoraClient
from sora_mcp.create_requests import RemixRequest, describe_validation_error
from sora_mcp.errors import BadRequestError, CreateOutcomeUnknownError, RateLimitError

pytestmark = pytest.mark.anyio

REMIX = re.compile(r"/v1/videos/[^/]+/remix")


def completed_video(fake: FakeGateway) -> str:
    task_id: str = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    fake.tasks[task_id].created_at -= 60
    return task_id


def posts(fake: FakeGateway) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


# --------------------------------------------------------------------------------------------- the request model


def test_remix_payload_holds_only_the_given_fields() -> None:
    """model and the trimmed prompt always; size and duration only when given."""
    assert RemixRequest(source_task_id="task_SRC", prompt=" add snow ").to_payload() == {
        "model": "sora-2",
        "prompt": "add snow",
    }
    assert RemixRequest(
        source_task_id="task_SRC", prompt="x", model="sora-2-pro", size="1:1", duration=25
    ).to_payload() == {
        "model": "sora-2-pro",
        "prompt": "x",
        "size": "1:1",
        "duration": 25,
    }


@pytest.mark.parametrize(
    ("model", "duration", "problem"),
    [
        ("sora-2", 10, None),
        ("sora-2", 15, None),
        ("sora-2", 25, "duration: sora-2 allows 10 or 15 seconds for a remix (25 s needs model='sora-2-pro')"),
        ("sora-2-pro", 15, None),
        ("sora-2-pro", 25, None),
        ("sora-2-pro", 10, "duration: sora-2-pro allows 15 or 25 seconds for a remix (10 s needs model='sora-2')"),
    ],
)
def test_remix_durations_follow_the_remix_rule_per_model(model: str, duration: int, problem: str | None) -> None:
    """sora-2 remixes last 10 or 15 s; sora-2-pro remixes 15 or 25 s (not 10, unlike a create)."""
    if problem is None:
        assert RemixRequest(source_task_id="task_SRC", prompt="x", model=model, duration=duration).duration == duration  # type: ignore[arg-type]
        return
    with pytest.raises(ValidationError) as caught:
        RemixRequest(source_task_id="task_SRC", prompt="x", model=model, duration=duration)  # type: ignore[arg-type]
    assert describe_validation_error(caught.value) == problem


def test_remix_needs_a_prompt_and_known_fields() -> None:
    """An empty prompt and unknown fields are refused, each naming the field."""
    with pytest.raises(ValidationError) as caught:
        RemixRequest(source_task_id="task_SRC", prompt="  ", images=["https://x"])  # type: ignore[call-arg]
    assert describe_validation_error(caught.value) == (
        "prompt: must say how to change the video; it is empty; images: Extra inputs are not permitted"
    )


# --------------------------------------------------------------------------------------------- the client


async def test_remix_posts_to_the_remix_endpoint_and_returns_a_queued_video(
    sora: SoraClient, fake: FakeGateway
) -> None:
    """One POST /v1/videos/{id}/remix with the key and body; the new task is read from the video endpoint."""
    source = completed_video(fake)
    task = await sora.create(RemixRequest(source_task_id=source, prompt="add snow", size="9:16", duration=15))
    assert (task.kind, task.status, task.model) == ("video", "queued", "sora-2")
    assert task.task_id != source and task.task_id in fake.tasks
    [request] = [r for r in fake.requests if r.method == "POST"]
    assert request.path == f"/v1/videos/{source}/remix"
    assert request.json == {"model": "sora-2", "prompt": "add snow", "size": "9:16", "duration": 15}
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    await sora.get_task(task.task_id)
    assert fake.requests[-1].path == f"/v1/videos/generations/{task.task_id}"


async def test_a_lost_remix_answer_is_never_retried(sora: SoraClient, fake: FakeGateway) -> None:
    """A 5xx after the gateway made the remix task is CreateOutcomeUnknownError after exactly one POST."""
    source = completed_video(fake)
    fake.fault("POST", REMIX, status=502, after_processing=True)
    with pytest.raises(CreateOutcomeUnknownError) as caught:
        await sora.create(RemixRequest(source_task_id=source, prompt="add snow"))
    assert caught.value.kind == "video"
    assert len(posts(fake)) == 1
    assert len(fake.tasks) == 2  # the remix exists at the gateway, unknown to the caller


async def test_a_rate_limited_remix_is_retried_because_it_surely_was_not_received(
    sora: SoraClient, fake: FakeGateway
) -> None:
    """429 is a definite refusal: the remix is sent again and made once."""
    source = completed_video(fake)
    fake.fault("POST", REMIX, status=429, headers={"Retry-After": "0"})
    task = await sora.create(RemixRequest(source_task_id=source, prompt="add snow"))
    assert posts(fake) == [f"/v1/videos/{source}/remix"] * 2
    assert set(fake.tasks) == {source, task.task_id}


async def test_remix_refusals_are_typed_errors(sora: SoraClient, fake: FakeGateway) -> None:
    """A remix of an unfinished video is the gateway's 400, passed through; a lasting 429 is RateLimitError."""
    fake.video_seconds = 100
    running = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    with pytest.raises(BadRequestError) as caught:
        await sora.create(RemixRequest(source_task_id=running, prompt="add snow"))
    assert (
        caught.value.message
        == f"Invalid request parameters: only completed videos can be remixed, task {running} is queued"
    )
    fake.fault("POST", REMIX, status=429, headers={"Retry-After": "0"}, times=3)
    with pytest.raises(RateLimitError):
        await sora.create(RemixRequest(source_task_id=running, prompt="add snow"))


# --------------------------------------------------------------------------------------------- the tool


async def test_remix_video_tool_returns_the_new_task(mcp_client: Client, fake: FakeGateway) -> None:
    """The tool returns the queued remix Task with a hint to poll it, in both protocol eras."""
    source = completed_video(fake)
    result = await mcp_client.call_tool(
        "remix_video", {"task_id": source, "prompt": "make it night", "model": "sora-2-pro", "duration": 25}
    )
    assert result.is_error is False
    task = result.structured_content
    assert task is not None
    assert (task["kind"], task["status"], task["model"]) == ("video", "queued", "sora-2-pro")
    assert f"task_id='{task['task_id']}'" in task["hint"]
    assert fake.requests[-1].json == {"model": "sora-2-pro", "prompt": "make it night", "duration": 25}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"prompt": "x", "model": "sora-2-pro", "duration": 10},
            "Invalid arguments, nothing was sent to the gateway: duration: sora-2-pro allows 15 or 25 seconds for "
            "a remix (10 s needs model='sora-2')",
        ),
        (
            {"prompt": " "},
            "Invalid arguments, nothing was sent to the gateway: prompt: must say how to change the video; it is empty",
        ),
        ({"prompt": "x", "size": "4:3"}, "size"),
        ({"prompt": "x", "task_id": "../etc"}, "task_id"),
    ],
    ids=["pro-10s", "empty-prompt", "bad-size", "bad-task-id"],
)
async def test_invalid_remix_arguments_never_reach_the_gateway(
    mcp_client: Client, fake: FakeGateway, arguments: dict[str, object], expected: str
) -> None:
    """Each invalid argument is a tool error naming it; the gateway receives nothing."""
    source = completed_video(fake)
    result = await mcp_client.call_tool("remix_video", {"task_id": source} | arguments)
    assert result.is_error is True
    [item] = result.content
    assert isinstance(item, TextContent)
    assert expected in item.text
    assert fake.requests == []


async def test_remix_of_an_unfinished_video_passes_the_gateway_reason_on(mcp_client: Client, fake: FakeGateway) -> None:
    """The gateway's 400 becomes a tool error with its message and 'Nothing was created.'"""
    fake.video_seconds = 100
    running = fake.create({"model": "sora-2", "prompt": "a cat"})["id"]
    result = await mcp_client.call_tool("remix_video", {"task_id": running, "prompt": "add snow"})
    [item] = result.content
    assert isinstance(item, TextContent)
    assert item.text == (
        "Error executing tool remix_video: The gateway rejected the request (HTTP 400: Invalid request parameters: "
        f"only completed videos can be remixed, task {running} is queued). Fix what it names and try again. "
        "Nothing was created."
    )


async def test_a_repeated_remix_reuses_the_first_and_allow_duplicate_makes_another(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """The journal's duplicate window covers remixes: the same remix of the same video is not paid twice."""
    source = completed_video(fake)
    arguments = {"task_id": source, "prompt": "make it night"}
    first = (await mcp_client.call_tool("remix_video", arguments)).structured_content
    again = (await mcp_client.call_tool("remix_video", arguments)).structured_content
    assert first is not None and again is not None
    assert again["task_id"] == first["task_id"] and again["reused"] is True
    assert "identical remix_video request" in again["hint"]
    other = (await mcp_client.call_tool("remix_video", arguments | {"allow_duplicate": True})).structured_content
    assert other is not None and other["task_id"] != first["task_id"]
    assert sum(1 for r in fake.requests if r.method == "POST") == 2


async def test_the_same_remix_prompt_on_another_video_is_not_a_duplicate(mcp_client: Client, fake: FakeGateway) -> None:
    """The source video is part of the request: remixing two videos the same way creates two tasks."""
    first_source, second_source = completed_video(fake), completed_video(fake)
    one = (await mcp_client.call_tool("remix_video", {"task_id": first_source, "prompt": "x"})).structured_content
    two = (await mcp_client.call_tool("remix_video", {"task_id": second_source, "prompt": "x"})).structured_content
    assert one is not None and two is not None
    assert one["task_id"] != two["task_id"] and "reused" not in two


async def test_a_remix_whose_answer_is_lost_is_journaled_as_outcome_unknown(
    mcp_client: Client, fake: FakeGateway
) -> None:
    """A 500 after the gateway created the remix: one POST, and list_tasks shows the unknown remix_video request."""
    source = completed_video(fake)
    fake.fault("POST", REMIX, status=500, after_processing=True)
    result = await mcp_client.call_tool("remix_video", {"task_id": source, "prompt": "add snow"})
    assert result.is_error is True
    assert sum(1 for r in fake.requests if r.method == "POST") == 1
    listed = (await mcp_client.call_tool("list_tasks", {})).structured_content
    assert listed is not None
    [unknown] = [task for task in listed["tasks"] if task.get("outcome_unknown")]
    assert unknown["prompt"] == "add snow"
    assert "remix_video again with allow_duplicate=true" in unknown["hint"]
