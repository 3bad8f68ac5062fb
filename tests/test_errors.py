"""The status-code -> exception mapping and the reading of both documented error envelopes."""

import pytest

from sora_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    make_status_error,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, ContentPolicyError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIStatusError),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type[APIStatusError]) -> None:
    """One class per documented status; other 5xx are ServerError; anything else the base class."""
    error = make_status_error(status, None, raw_text="")
    assert type(error) is cls
    assert error.status_code == status


def test_envelope_a_with_integer_code_is_read() -> None:
    """`{"error": {"code": 401, "message", "type"}}` gives message, code and type."""
    body = {
        "error": {
            "code": 401,
            "message": "Authentication failed, please check your API key",
            "type": "authentication_error",
        }
    }
    error = make_status_error(401, body, request_id="req-1")
    assert (error.message, error.code, error.error_type, error.request_id) == (
        "Authentication failed, please check your API key",
        "401",
        "authentication_error",
        "req-1",
    )


def test_envelope_b_with_string_code_is_read() -> None:
    """`{"error": {"code": "invalid_request", "message", "param", "type"}}` gives the same fields."""
    body = {
        "error": {
            "code": "invalid_request",
            "message": "The 'prompt' field is required.",
            "param": "prompt",
            "type": "invalid_request_error",
        }
    }
    error = make_status_error(400, body)
    assert (error.message, error.code) == ("The 'prompt' field is required.", "invalid_request")


@pytest.mark.parametrize(
    ("body", "raw", "is_html", "message"),
    [
        ({"message": "top-level message"}, "", False, "top-level message"),
        ({"error": "plain string error"}, "", False, "plain string error"),
        (None, "upstream exploded", False, "upstream exploded"),
        (None, "", True, "the gateway answered with an HTML error page instead of JSON"),
        (None, "", False, "HTTP 502"),
        (None, "x" * 1000, False, "x" * 300),
    ],
)
def test_other_error_bodies_fall_back_sensibly(body: object, raw: str, is_html: bool, message: str) -> None:
    """Top-level message, string error, raw text (trimmed to 300 chars), HTML pages and empty bodies all read."""
    assert make_status_error(502, body, raw_text=raw, is_html=is_html).message == message
