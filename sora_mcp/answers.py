"""Reading a gateway answer: capped, decompressed by us, the API key masked, and turned into data or a typed error.

Nothing here trusts the gateway: the body is read up to ``MAX_ANSWER_BYTES`` decoded bytes (a gzip bomb inflates
chunk by chunk within the cap), the key is masked in the raw text and in every parsed string, HTML pages and
malformed or over-nested JSON become ``APIResponseError``, and non-2xx answers the status error of their class.
"""

import json
import zlib
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2

from sora_mcp.config import redact
from sora_mcp.errors import APIResponseError, make_status_error

MAX_ANSWER_BYTES = 1024 * 1024
"""Largest gateway answer read, counted after decompression: a task's JSON takes a few kilobytes, so anything
near this is a broken or hostile gateway (a 100 MB body, a gzip bomb) and is refused, memory kept flat."""


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the gateway asks us to wait: ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class AnswerTooLargeError(Exception):
    def __init__(self, status_code: int, limit: int) -> None:
        super().__init__(
            f"the gateway answered HTTP {status_code} with a body over {limit // 1024} KB (a task's answer takes a "
            "few KB); it was not read"
        )
        self.status_code = status_code


async def read_capped(response: httpx2.Response, limit: int) -> bytes:
    """The decoded body, refused as soon as it passes ``limit`` bytes.

    Decompression is ours, bounded: httpx inflates each network chunk whole, and one 64 KB chunk of a gzip bomb
    inflates to tens of megabytes. Here no call produces more than the bytes still allowed.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and encoding in ("", "identity") and int(declared) > limit:
        raise AnswerTooLargeError(response.status_code, limit)
    if encoding in ("gzip", "x-gzip", "deflate"):
        decoder: zlib._Decompress | None = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 0))
    elif encoding in ("", "identity"):
        decoder = None
    else:
        raise APIResponseError(
            f"the gateway answered HTTP {response.status_code} in an encoding sora-mcp did not ask for ({encoding})",
            status_code=response.status_code,
        )
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        pending = raw
        while pending:
            if decoder is None:
                chunk, pending = pending, b""
            else:
                try:
                    chunk = decoder.decompress(pending, limit - size + 1)
                except zlib.error:
                    raise APIResponseError(
                        f"the gateway answered HTTP {response.status_code} with a body that does not decompress "
                        f"({encoding})",
                        status_code=response.status_code,
                    ) from None
                pending = decoder.unconsumed_tail
            size += len(chunk)
            if size > limit:
                raise AnswerTooLargeError(response.status_code, limit)
            chunks.append(chunk)
    return b"".join(chunks)


def read_json(response: httpx2.Response, content: bytes, now: float, *, secret: str | None = None) -> dict[str, Any]:
    """The JSON object of a 2xx answer (``content``, its body), or the typed error for anything else.

    A gateway that echoes the API key (``Invalid API key sk-...``) has it masked here, before any error, log line
    or hint can carry it: in the raw text, and again in every string of the parsed JSON (a key written with
    ``\\u`` escapes only appears once decoded).
    """
    content_type = response.headers.get("content-type", "").lower()
    text = redact(content.decode("utf-8", errors="replace"), secret)  # JSON is UTF-8 (RFC 8259)
    is_html = "html" in content_type or text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
    body: Any = None
    if not is_html and text.strip():
        try:
            body = _redacted(json.loads(text), secret)
        except (ValueError, RecursionError):  # malformed, or nested deeper than the parser goes
            body = None
    if not response.is_success:
        raise make_status_error(
            response.status_code,
            body,
            raw_text="" if is_html else text,
            is_html=is_html,
            request_id=response.headers.get("x-request-id") or response.headers.get("x-oneapi-request-id"),
            retry_after=parse_retry_after(response.headers, now),
        )
    if not isinstance(body, dict):
        what = "an HTML page" if is_html else "a body that is not a JSON object"
        raise APIResponseError(
            f"the gateway answered HTTP {response.status_code} with {what}", status_code=response.status_code, body=text
        )
    return body


def _redacted(value: Any, secret: str | None) -> Any:
    """``value`` (parsed JSON) with ``secret`` masked in every string, keys included."""
    if not secret:
        return value
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, list):
        return [_redacted(item, secret) for item in value]
    if isinstance(value, dict):
        return {redact(str(key), secret): _redacted(item, secret) for key, item in value.items()}
    return value
