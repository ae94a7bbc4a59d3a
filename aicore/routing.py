"""AI_PROVIDERS: model servers besides the default, and which calls go to them.

    AI_PROVIDERS={"local": {"protocol": "openai", "url": "http://127.0.0.1:11434/v1"},
                  "openai": {"protocol": "openai", "url": "https://api.openai.com/v1",
                             "api_key_env": "OPENAI_API_KEY"}}

A version whose `model_id` is `local/qwen2.5:7b` is answered by the
provider `local` with the model `qwen2.5:7b`; any other `model_id` (one
without a slash, or whose prefix names no provider, such as
`meta-llama/Llama-3.1-8B`) by the default, AI_CORE_URL. A provider's key is
read from the environment variable it names, never written in the JSON.

Imported by the settings: nothing here may import Django.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

PROTOCOL_NAMES = ("aicore", "openai")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")


@dataclass(frozen=True)
class Provider:
    name: str
    protocol: str
    url: str
    api_key: str = ""


def parse_providers(raw: str, environ: Mapping[str, str]) -> dict[str, Provider]:
    """AI_PROVIDERS's JSON as providers; ValueError naming what is wrong."""
    if not raw.strip():
        return {}
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise ValueError("AI_PROVIDERS is not JSON.") from exc
    if not isinstance(given, dict):
        raise ValueError('AI_PROVIDERS is a JSON object: {"<provider>": {"protocol", "url", "api_key_env"}}.')
    providers = {}
    for name, spec in given.items():
        if not NAME.fullmatch(name):
            raise ValueError(f"AI_PROVIDERS: {name!r} is not a provider name (a-z, 0-9, _ and -).")
        if not isinstance(spec, dict) or set(spec) - {"protocol", "url", "api_key_env"}:
            raise ValueError(f"AI_PROVIDERS[{name!r}] has only `protocol`, `url` and `api_key_env`.")
        protocol, url = spec.get("protocol", "openai"), spec.get("url")
        if protocol not in PROTOCOL_NAMES:
            raise ValueError(f"AI_PROVIDERS[{name!r}]: protocol is one of {', '.join(PROTOCOL_NAMES)}.")
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s]+", url):
            raise ValueError(f"AI_PROVIDERS[{name!r}]: url is an http(s) base URL.")
        key_env = spec.get("api_key_env", "")
        if key_env and not (isinstance(key_env, str) and ENV_NAME.fullmatch(key_env)):
            raise ValueError(f"AI_PROVIDERS[{name!r}]: api_key_env is the name of an environment variable.")
        key = environ.get(key_env, "") if key_env else ""
        if key_env and not key:
            raise ValueError(f"AI_PROVIDERS[{name!r}]: {key_env}, the variable with its key, is not set.")
        providers[name] = Provider(name, protocol, url.rstrip("/"), key)
    return providers


def split_model(model_id: str, providers: Mapping[str, object]) -> tuple[str | None, str]:
    """(the provider, the model it is asked for), or (None, model_id) for the default."""
    prefix, slash, model = model_id.partition("/")
    if slash and model and prefix in providers:
        return prefix, model
    return None, model_id
