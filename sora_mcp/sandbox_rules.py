"""The gateway's documented request rules, as the sandbox enforces them (upstream-api.md §4, §7), and its error
envelope. The sandbox answers a bad request exactly as the real gateway does: HTTP 400, ``invalid_request_error``.

These are deliberately written apart from sora-mcp's own request models (``create_requests.py``): the sandbox
stands in for the gateway, so a rule our models forgot is still refused here, as it would be upstream.
"""

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

JSON = dict[str, Any]

_MODELS = ("sora-2", "sora-2-pro")
_SIZES = ("16:9", "9:16", "1:1")
_STYLES = ("comic", "news", "anime", "selfie", "nostalgic", "thanksgiving")
_METADATA_FLAGS = ("watermark", "private", "storyboard", "thumbnail")
_DATA_IMAGE = re.compile(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+")


class SandboxError(Exception):
    """An error the gateway answers with its error envelope and an HTTP status."""

    def __init__(self, status: int, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type

    def envelope(self) -> JSON:
        """The response body: `{"error": {"code": <status>, "message": ..., "type": ...}}`."""
        return {"error": {"code": self.status, "message": self.message, "type": self.error_type}}


def invalid(detail: str) -> SandboxError:
    return SandboxError(400, f"Invalid request parameters: {detail}", "invalid_request_error")


def check_model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or model not in _MODELS:
        raise invalid(f"model must be one of {', '.join(_MODELS)}, got {json.dumps(model)}")
    return model


def check_prompt(body: JSON, missing: str) -> str:
    if "prompt" not in body:
        raise invalid(missing)
    prompt = body["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt must be a non-empty string")
    return prompt


def check_duration(body: JSON, model: str, allowed: dict[str, tuple[int, ...]]) -> None:
    duration = body.get("duration")
    if duration is None:
        return
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise invalid(f"duration must be an integer number of seconds, got {json.dumps(duration)}")
    if duration not in allowed[model]:
        choices = ", ".join(map(str, allowed[model]))
        raise invalid(f"duration for {model} must be one of {choices}, got {duration}")


def check_size(body: JSON) -> None:
    size = body.get("size")
    if size is not None and size not in _SIZES:
        raise invalid(f"size must be one of {', '.join(_SIZES)}, got {json.dumps(size)}")


def check_images(body: JSON) -> None:
    images = body.get("images")
    if images is None:
        return
    if not isinstance(images, list):
        raise invalid("images must be a list of image URLs or base64 data URIs")
    for index, image in enumerate(images):
        if not (is_http_url(image) or (isinstance(image, str) and _DATA_IMAGE.fullmatch(image))):
            raise invalid(f"images[{index}] must be an http(s) URL or a data:image/...;base64,... URI")


def check_metadata(body: JSON) -> None:
    metadata = body.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise invalid("metadata must be an object")
    style = metadata.get("style")
    if style is not None and style not in _STYLES:
        raise invalid(f"metadata.style must be one of {', '.join(_STYLES)}, got {json.dumps(style)}")
    for flag in _METADATA_FLAGS:
        if metadata.get(flag) is not None and not isinstance(metadata[flag], bool):
            raise invalid(f"metadata.{flag} must be a boolean")


def check_timestamps(value: Any) -> None:
    malformed = invalid('timestamps must be "start,end" in seconds, e.g. "1,3"')
    if not isinstance(value, str):
        raise malformed
    try:
        start, end = (float(part) for part in value.split(","))
    except ValueError:
        raise malformed from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise malformed
    if start < 0:
        raise invalid("timestamps start must not be negative")
    if end <= start:
        raise invalid("timestamps end must be after start")
    if not 1 <= end - start <= 3:
        raise invalid("timestamps range must be between 1-3 seconds")


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    url = urlsplit(value)
    return url.scheme in ("http", "https") and bool(url.netloc)
