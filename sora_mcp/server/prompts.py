"""MCP prompts: ready-made instructions a user picks in their client (``prompts/list``, ``prompts/get``).

``make_video`` turns an idea into a good Sora-2 prompt and walks the model through the paid workflow: confirm,
create once, wait with ``get_task``, deliver the URL and offer ``download_video``. Prompt arguments arrive as
strings; a bad one is a JSON-RPC ``invalid params`` error whose message names the argument and the allowed
values.
"""

from typing import Annotated, Any, get_args

from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import Field

from sora_mcp.create_requests import DURATIONS, MAX_PROMPT_CHARS
from sora_mcp.models import MAX_WAIT_SECONDS, Style

STYLES: tuple[str, ...] = get_args(Style)
ALL_DURATIONS: tuple[int, ...] = tuple(sorted({d for durations in DURATIONS.values() for d in durations}))


def register_prompts(server: MCPServer[Any]) -> None:
    """Add the prompts to ``server``."""
    server.prompt(
        name="make_video",
        title="Make a video",
        description="Turn an idea into a good Sora-2 prompt, then create the video (after the user confirms the "
        "cost), wait for it, and deliver or download it.",
    )(make_video)


def make_video(
    idea: Annotated[str, Field(description="What the video should show, in the user's words.")],
    style: Annotated[
        str | None, Field(description=f"Optional style preset: {', '.join(STYLES)}. Leave empty for none.")
    ] = None,
    duration: Annotated[
        str | None,
        Field(description="Optional length in seconds: 10 or 15 (sora-2), or 25 (sora-2-pro only)."),
    ] = None,
) -> str:
    """The ``make_video`` prompt text for an idea, with the style and duration filled in when given."""
    idea = idea.strip()
    if not idea:
        raise _invalid("idea: describe the video you want; it is empty")
    if len(idea) > MAX_PROMPT_CHARS:
        raise _invalid(f"idea: is {len(idea)} characters long; the limit is {MAX_PROMPT_CHARS}")
    preset = _style(style)
    seconds = _duration(duration)

    if preset:
        style_line = (
            f'- style: I chose the "{preset}" preset. Pass style="{preset}" to create_video, and write '
            "the look to match it."
        )
    else:
        style_line = (
            "- style: describe the look in words (cinematic, documentary, claymation, watercolour...). If one of "
            f"the presets fits ({', '.join(STYLES)}), you may pass it as style."
        )
    if seconds is None:
        duration_line = (
            '- duration: 10 s unless I ask for more; 15 s for more action; 25 s only with model="sora-2-pro".'
        )
    elif seconds in DURATIONS["sora-2"]:
        duration_line = f'- duration: {seconds} s, with model="sora-2" (or "sora-2-pro" if I want higher quality).'
    else:
        duration_line = f'- duration: {seconds} s, which needs model="sora-2-pro".'

    lines = [
        f"Help me make a video with Sora-2 using the sora-mcp tools. My idea: {idea}",
        "",
        "1. Write the Sora prompt: one vivid paragraph of 60-150 words, in this order:",
        "- subject: who or what is on screen, with concrete visual details (age, clothing, colours, materials);",
        "- action: what happens, in one or two beats that fit the length of the clip;",
        "- setting: the place, time of day, weather or era;",
        "- camera: shot size and angle (wide, medium, close-up, low angle) and one movement (static, slow "
        "dolly-in, handheld, drone orbit);",
        "- lighting and colour: for example golden-hour backlight, neon at night, soft overcast; the palette;",
        "- sound: Sora-2 makes audio, so describe ambience, music, or short spoken lines in quotes.",
        "Describe one continuous shot of what a camera can see. No on-screen text or logos unless I ask for them, "
        "and no real people's likenesses or copyrighted characters: the content policy refuses them.",
        "",
        "2. Choose the settings:",
        style_line,
        duration_line,
        '- size: "16:9" (landscape), "9:16" (vertical, for phones) or "1:1" (square), whichever suits where I '
        "will show it.",
        "",
        "3. Show me the prompt and the settings, and the estimated cost: the model's price per second (get_spending "
        "shows the price table, today's spend and the budgets) times the duration (the shortest the model allows "
        "if none is chosen). Tell me it is an estimate, not the bill, and that generating costs money and takes a "
        "few minutes. Do not call create_video until I confirm.",
        "",
        "4. Call create_video once, with the prompt and the settings. Keep the task_id it returns, and tell me its "
        "cost_estimate_usd. If the result says confirmation_required, nothing was created: ask me, and only if I "
        "agree call create_video again with the same arguments plus its confirm_quote.",
        "",
        f'5. Call get_task(task_id=<that id>, wait_seconds={MAX_WAIT_SECONDS}), and again while the status is "queued" '
        "or "
        '"in_progress"; follow each result\'s hint. If a call fails or times out, poll the same task_id again '
        "(list_tasks finds it if it is lost): never create the video a second time.",
        "",
        '6. When the status is "completed", give me video_url and tell me it expires at expires_at (about 24 '
        "hours), and offer to save the file with download_video(task_id=<that id>) before then; it returns the "
        'saved file\'s path. If the status is "failed", tell me error.message and suggest how to change the prompt.',
    ]
    return "\n".join(lines) + "\n"


def _style(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    style = value.strip().lower()
    if style not in STYLES:
        raise _invalid(f"style: must be one of {', '.join(STYLES)} (or empty); got {value!r}")
    return style


def _duration(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip().lower().removesuffix("s").strip()
    if not text.isdigit() or int(text) not in ALL_DURATIONS:
        allowed = ", ".join(str(d) for d in ALL_DURATIONS)
        raise _invalid(f"duration: must be {allowed} (seconds) or empty; got {value!r}")
    return int(text)


def _invalid(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Invalid arguments for make_video: {message}")
