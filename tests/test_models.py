"""Request validation and the normalization of both documented response dialects into one Task."""

from typing import Any

import pytest
from pydantic import ValidationError

from sora_mcp.create_requests import CharacterRequest, VideoRequest, describe_validation_error
from sora_mcp.models import Task, parse_task

NOW = 1_768_380_300.0


def problems(request_type: type[VideoRequest] | type[CharacterRequest], /, **arguments: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        request_type(**arguments)
    return describe_validation_error(caught.value)


# ------------------------------------------------------------------------------------------------ requests


def test_video_payload_puts_presets_into_metadata_and_leaves_unset_fields_out() -> None:
    """Only given arguments are sent; style/watermark/private/storyboard/thumbnail live in `metadata`."""
    request = VideoRequest(
        prompt=" a cat ", model="sora-2-pro", duration=25, size="9:16", style="anime", watermark=False, thumbnail=True
    )
    assert request.to_payload() == {
        "model": "sora-2-pro",
        "prompt": "a cat",
        "duration": 25,
        "size": "9:16",
        "metadata": {"style": "anime", "watermark": False, "thumbnail": True},
    }
    assert VideoRequest(prompt="x").to_payload() == {"model": "sora-2", "prompt": "x"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "x", "duration": 25}, "duration: sora-2 allows 10 or 15 seconds (25 s needs model='sora-2-pro')"),
        ({"prompt": "x", "model": "sora-2-pro", "duration": 12}, "duration: Input should be 10, 15 or 25"),
        ({"prompt": "x", "model": "sora-3"}, "model: Input should be 'sora-2' or 'sora-2-pro'"),
        ({"prompt": "x", "size": "4:3"}, "size: Input should be '16:9', '9:16' or '1:1'"),
        ({"prompt": "x", "style": "noir"}, "style: Input should be 'comic', 'news', 'anime', 'selfie', 'nostalgic'"),
        ({"prompt": "   "}, "prompt: must describe the video; it is empty"),
        ({"prompt": "x" * 10_001}, "prompt: is 10001 characters long; the limit is 10000"),
        ({"prompt": "x", "images": ["file:///etc/passwd"]}, "images: item 0 is a local file; create_video reads it"),
        ({"prompt": "x", "images": ["cat.png"]}, "images: item 0 must be an http(s) URL, a data:image"),
        ({"prompt": "x", "images": ["data:image/png;base64,%%%"]}, "images: item 0 is a data: URI whose base64"),
        (
            {"prompt": "x", "images": ["data:text/plain;base64,aGk="]},
            "images: item 0 is a data: URI of type text/plain",
        ),
        ({"prompt": "x", "images": ["https://e.x/a.png"] * 11}, "images: has 11 images; give at most 10"),
        ({"prompt": "x", "seed": 1}, "seed: Extra inputs are not permitted"),
    ],
)
def test_invalid_video_requests_name_the_field_and_the_allowed_values(arguments: dict[str, Any], expected: str) -> None:
    """Each documented rule is enforced locally with a message naming the field."""
    assert expected in problems(VideoRequest, **arguments)


def test_valid_images_are_accepted_as_urls_or_base64_data_uris() -> None:
    """http(s) URLs and well-formed base64 image data URIs pass; an empty list is the same as none."""
    request = VideoRequest(prompt="x", images=["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="])
    assert request.to_payload()["images"] == ["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="]
    assert "images" not in VideoRequest(prompt="x", images=[]).to_payload()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"timestamps": "1,5", "url": "https://v.example/a.mp4"}, "timestamps: span is 4 s; it must be between 1"),
        ({"timestamps": "2,2.5", "url": "https://v.example/a.mp4"}, "timestamps: span is 0.5 s"),
        ({"timestamps": "3,1", "url": "https://v.example/a.mp4"}, "timestamps: end (1) must be after start (3)"),
        ({"timestamps": "-1,1", "url": "https://v.example/a.mp4"}, "timestamps: must be 'start,end' in seconds"),
        ({"timestamps": "1-3", "url": "https://v.example/a.mp4"}, "timestamps: must be 'start,end' in seconds"),
        ({"timestamps": "1,3"}, "give exactly one: url (a video URL) or from_task"),
        ({"timestamps": "1,3", "url": "https://v.example/a.mp4", "from_task": "task_1"}, "not both"),
        ({"timestamps": "1,3", "url": "ftp://v.example/a.mp4"}, "url: must be a public http:// or https:// URL"),
        ({"timestamps": "1,3", "from_task": "../etc"}, "from_task: must be a task id as returned by create_video"),
    ],
)
def test_invalid_character_requests_are_refused_with_the_rule(arguments: dict[str, Any], expected: str) -> None:
    """Timestamps span 1-3 s with start >= 0 and end > start; exactly one of url/from_task."""
    assert expected in problems(CharacterRequest, **arguments)


def test_character_payload_carries_the_source_and_the_timestamps() -> None:
    """A character request sends url or from_task, timestamps and model, and no prompt."""
    assert CharacterRequest(timestamps=" 1 , 3 ", from_task="task_01K").to_payload() == {
        "model": "sora-2",
        "timestamps": "1,3",
        "from_task": "task_01K",
    }
    assert CharacterRequest(timestamps="0,1.5", url="https://v.example/a.mp4").to_payload()["url"] == (
        "https://v.example/a.mp4"
    )


# ------------------------------------------------------------------------------------------------ dialects

TOAPIS_COMPLETED = {
    "id": "video_7497f4d5",
    "object": "generation.task",
    "model": "sora-2",
    "status": "completed",
    "progress": 100,
    "created_at": 1768380222,
    "completed_at": 1768380514,
    "expires_at": 1768466914,
    "result": {"type": "video", "data": [{"url": "https://files.dashlyai.cc/sora/a.mp4", "format": "mp4"}]},
}
DASHLYAI_COMPLETED = {
    "id": "task_01K9S419324DREZFBWNSVXYR6H",
    "object": "video.generation",
    "status": "completed",
    "progress": 100,
    "model": "sora-2",
    "created_at": 1735516800,
    "completed_at": 1735516980,
    "url": "https://files.dashlyai.cc/sora/b.mp4",
    "thumbnail": "https://files.dashlyai.cc/generated/b.jpg",
}
CHARACTER_COMPLETED = {
    "id": "task_01KC0JZCMTMQ70D68XTM56Q5D0",
    "object": "generation.task",
    "model": "sora-2",
    "status": "completed",
    "progress": 100,
    "created_at": 1765251461,
    "completed_at": 1765251507,
    "result": {
        "type": "character",
        "data": {
            "characters": [
                {
                    "id": "ch_6937998961208191a45ef08447a554df",
                    "display_name": "Turbo Whiskers",
                    "profile_picture_url": "https://upload.toapis.com/f/image/character_task_xxx.jpg",
                    "username": "duksvfkf.turbo_whis",
                }
            ]
        },
    },
    "metadata": {},
}


def test_toapis_dialect_maps_result_data_url_to_video_url() -> None:
    """`result.data[0].url` becomes video_url; times and expiry are kept as Unix seconds."""
    task = parse_task(TOAPIS_COMPLETED, "video", now=NOW)
    assert task.model_dump(exclude_defaults=True) == {
        "task_id": "video_7497f4d5",
        "kind": "video",
        "status": "completed",
        "progress": 100,
        "model": "sora-2",
        "created_at": 1768380222,
        "completed_at": 1768380514,
        "expires_at": 1768466914,
        "video_url": "https://files.dashlyai.cc/sora/a.mp4",
        "upstream_status": "completed",
    }


def test_dashlyai_dialect_maps_top_level_url_and_thumbnail() -> None:
    """The older shape's top-level `url` and `thumbnail` become video_url and thumbnail_url."""
    task = parse_task(DASHLYAI_COMPLETED, "video", now=NOW)
    assert (task.status, task.video_url, task.thumbnail_url) == (
        "completed",
        "https://files.dashlyai.cc/sora/b.mp4",
        "https://files.dashlyai.cc/generated/b.jpg",
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("submitted", "queued"),
        ("queued", "queued"),
        ("pending", "queued"),
        ("in_progress", "in_progress"),
        ("PROCESSING", "in_progress"),
        ("completed", "completed"),
        ("succeeded", "completed"),
        ("failed", "failed"),
        ("cancelled", "failed"),
        ("teleporting", "unknown"),
        ("", "unknown"),
    ],
)
def test_status_words_of_both_dialects_normalize(word: str, status: str) -> None:
    """submitted/queued/pending are all queued; an undocumented word is reported as unknown, not crashed on."""
    task = parse_task({"id": "t1", "status": word}, "video", now=NOW)
    assert task.status == status
    assert task.upstream_status == (word or None)


def test_a_character_result_yields_characters_with_mentions_whatever_the_endpoint() -> None:
    """`result.data.characters[]` becomes characters with `@username` mentions, and marks the task a character."""
    task = parse_task(CHARACTER_COMPLETED, "video", now=NOW)
    assert task.kind == "character"
    assert [c.model_dump() for c in task.characters] == [
        {
            "id": "ch_6937998961208191a45ef08447a554df",
            "username": "duksvfkf.turbo_whis",
            "display_name": "Turbo Whiskers",
            "profile_picture_url": "https://upload.toapis.com/f/image/character_task_xxx.jpg",
            "mention": "@duksvfkf.turbo_whis",
        }
    ]


def test_character_variants_without_a_data_level_and_with_avatar_url_are_read() -> None:
    """Other gateways of the family put characters directly under `result` and call the picture `avatar_url`."""
    raw = {
        "id": "c1",
        "status": "completed",
        "result": {"characters": [{"id": "ch_1", "username": "ab.cd", "avatar_url": "https://a/x.jpg"}]},
    }
    task = parse_task(raw, "character", now=NOW)
    assert task.characters[0].profile_picture_url == "https://a/x.jpg"
    assert task.characters[0].mention == "@ab.cd"


def test_failed_task_carries_the_gateway_error_and_a_reasonless_failure_still_explains() -> None:
    """`error: {code, message}` is passed through; a failed task without one still gets a message."""
    failed = parse_task(
        {
            "id": "t",
            "status": "failed",
            "progress": 0,
            "error": {"code": "generation_failed", "message": "Content violates the content policy"},
        },
        "video",
        now=NOW,
    )
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == ("generation_failed", "Content violates the content policy")
    bare = parse_task({"id": "t", "status": "failed"}, "video", now=NOW)
    assert bare.error is not None and "without giving a reason" in bare.error.message
    numeric = parse_task({"id": "t", "status": "failed", "error": {"code": 422, "message": "m"}}, "video", now=NOW)
    assert numeric.error is not None and numeric.error.code == "422"


@pytest.mark.parametrize(
    ("raw_progress", "expected"), [(65, 65), ("65%", 65), (0.5, 50), (150, 100), (-3, 0), ("n/a", 0), (None, 0)]
)
def test_progress_is_read_tolerantly_and_clamped(raw_progress: object, expected: int) -> None:
    """Integers, percent strings and fractions all become 0-100."""
    assert (
        parse_task({"id": "t", "status": "in_progress", "progress": raw_progress}, "video", now=NOW).progress
        == expected
    )


def test_timestamps_in_milliseconds_or_iso_format_become_unix_seconds() -> None:
    """created_at may come as milliseconds or ISO 8601; both are normalized to Unix seconds."""
    assert (
        parse_task({"id": "t", "status": "queued", "created_at": 1768380222000}, "video", now=NOW).created_at
        == 1768380222
    )
    iso = parse_task({"id": "t", "status": "queued", "created_at": "2026-01-14T08:43:42Z"}, "video", now=NOW)
    assert iso.created_at == 1768380222


def test_estimated_time_becomes_seconds_left() -> None:
    """dashlyai's `estimated_time` (total seconds) turns into eta_seconds relative to now."""
    raw = {"id": "t", "status": "submitted", "created_at": int(NOW) - 60, "estimated_time": 180}
    assert parse_task(raw, "video", now=NOW).eta_seconds == 120


def test_task_output_schema_documents_every_field() -> None:
    """The Task model's JSON schema (the tools' output schema) has a description for every property."""
    schema = Task.model_json_schema()
    assert all("description" in prop for prop in schema["properties"].values())
    assert set(schema["required"]) == {"kind", "status"}  # task_id is absent only when outcome_unknown
