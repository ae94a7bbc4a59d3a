"""Limits on free-form JSON that users store (preferences; AI-Core's metadata)."""

import json
import math
from typing import Any

from rest_framework import serializers


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value: scalars are 0, `{}` and `[]` are 1."""
    depth, level = 0, [value]
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return depth


def validate_json_limits(value: Any, *, what: str, max_depth: int, max_bytes: int) -> None:
    if json_depth(value) > max_depth:
        raise serializers.ValidationError(f"{what} may be nested at most {max_depth} levels deep.")
    if len(json.dumps(value, ensure_ascii=False).encode()) > max_bytes:
        raise serializers.ValidationError(f"{what} may take at most {max_bytes} bytes serialized.")


def json_problem(value: Any, *, max_depth: int) -> str | None:
    """What makes a decoded JSON value unfit to store, or None.

    PostgreSQL cannot hold NUL characters or lone surrogates in text, JSON
    has no NaN or infinities (`1e999` decodes to one), and Python recurses
    on deep nesting. Iterative, so a deep value cannot overflow the stack.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _text_problem(key)
                if problem:
                    return problem
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "strings may not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "strings must be valid Unicode"
    return None
