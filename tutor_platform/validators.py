"""Limits on free-form JSON that users store (preferences, attachments)."""

import json
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
