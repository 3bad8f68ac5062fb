"""The ``make_video`` prompt through the official client: listing, filled-in text, and clear argument errors."""

import pytest
from mcp import Client, MCPError
from mcp.types import INVALID_PARAMS, TextContent

pytestmark = pytest.mark.anyio


async def test_make_video_is_listed_with_its_arguments(mcp_client: Client) -> None:
    """prompts/list shows make_video with a required idea and optional style and duration."""
    [prompt] = (await mcp_client.list_prompts()).prompts
    assert (prompt.name, prompt.title) == ("make_video", "Make a video")
    assert prompt.description is not None
    assert "create the video" in prompt.description
    arguments = {argument.name: argument.required for argument in prompt.arguments or []}
    assert arguments == {"idea": True, "style": False, "duration": False}


async def test_make_video_walks_through_prompt_writing_and_the_paid_workflow(mcp_client: Client) -> None:
    """The text covers the parts of a good Sora prompt, confirming the cost, one create, waiting, delivery."""
    result = await mcp_client.get_prompt("make_video", {"idea": "  a fox crossing a frozen lake  "})
    [message] = result.messages
    assert message.role == "user"
    assert isinstance(message.content, TextContent)
    text = message.content.text
    assert text.startswith("Help me make a video with Sora-2 using the sora-mcp tools. My idea: a fox crossing a")
    for part in ("- subject:", "- action:", "- setting:", "- camera:", "- lighting and colour:", "- sound:"):
        assert part in text
    assert "If one of the presets fits (comic, news, anime, selfie, nostalgic, thanksgiving)" in text
    assert "- duration: 10 s unless I ask for more" in text
    assert "costs money" in text
    assert "Do not call create_video until I confirm." in text
    assert "Call create_video once" in text
    assert "get_task(task_id=<that id>, wait_seconds=50)" in text
    assert "(list_tasks finds it if it is lost): never create the video a second time" in text
    assert "give me video_url" in text
    assert "offer to save the file with download_video(task_id=<that id>)" in text


@pytest.mark.parametrize(
    ("style", "duration", "expected"),
    [
        ("Anime", "10", ['Pass style="anime" to create_video', '- duration: 10 s, with model="sora-2"']),
        ("", "15s", ["describe the look in words", '- duration: 15 s, with model="sora-2"']),
        ("comic", " 25 ", ['Pass style="comic"', '- duration: 25 s, which needs model="sora-2-pro".']),
    ],
)
async def test_style_and_duration_are_normalized_into_the_text(
    mcp_client: Client, style: str, duration: str, expected: list[str]
) -> None:
    """Style is case-insensitive, duration may carry an 's'; 25 s asks for sora-2-pro; empty means unset."""
    result = await mcp_client.get_prompt("make_video", {"idea": "a fox", "style": style, "duration": duration})
    [message] = result.messages
    assert isinstance(message.content, TextContent)
    text = message.content.text
    for line in expected:
        assert line in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"idea": "a fox", "style": "cinematic"},
            "style: must be one of comic, news, anime, selfie, nostalgic, thanksgiving (or empty); got 'cinematic'",
        ),
        ({"idea": "a fox", "duration": "12"}, "duration: must be 10, 15, 25 (seconds) or empty; got '12'"),
        ({"idea": "a fox", "duration": "ten"}, "duration: must be 10, 15, 25 (seconds) or empty; got 'ten'"),
        ({"idea": "   "}, "idea: describe the video you want; it is empty"),
    ],
    ids=["style", "duration", "duration-word", "idea"],
)
async def test_bad_arguments_are_invalid_params_naming_the_argument(
    mcp_client: Client, arguments: dict[str, str], message: str
) -> None:
    """A bad argument is a JSON-RPC invalid-params error that names it and lists what is allowed."""
    with pytest.raises(MCPError) as caught:
        await mcp_client.get_prompt("make_video", arguments)
    assert caught.value.code == INVALID_PARAMS
    assert caught.value.message == f"Invalid arguments for make_video: {message}"
