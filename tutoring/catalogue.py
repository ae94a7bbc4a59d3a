"""The public catalogue (courses and tutors) served from the cache.

Every student's app reads the catalogue, and it changes only when staff edit
it or a rating moves. A response is cached under the catalogue's current
*generation*; every write that changes what the catalogue shows calls
`catalogue_changed()` once its transaction commits, which starts a new
generation, so no list is ever served stale. The write paths that call it:
the admin (courses, tutors, inlines, deletions), the tutor's rating
(`feedback.services.tutor_rating_recompute`) and `seed_demo`. A new write
path must call it too; `CATALOGUE_CACHE_SECONDS` bounds the age of an entry
all the same.

Staff get internal fields and are never served from the cache.
"""

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse, HttpResponseBase
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

logger = logging.getLogger(__name__)

GENERATION_KEY = "catalogue:generation"


def catalogue_changed() -> None:
    """Starts a new generation once the current transaction (if any) commits."""
    transaction.on_commit(_new_generation)


def _new_generation() -> None:
    try:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, None)
    except Exception as exc:  # the cache is down: entries expire on their own
        logger.warning("Catalogue generation not bumped: %s", type(exc).__name__)


def cached_response(request: Request, build: Callable[[], Response]) -> HttpResponseBase:
    """`build()`'s response, from the cache when the catalogue has not changed.

    An entry is the page's JSON, already rendered, with the generation it
    was built in; the generation and the entry come in one round trip, and a
    hit is sent as it is stored.
    """
    if request.user.is_staff or settings.CATALOGUE_CACHE_SECONDS <= 0:
        return build()
    key = "catalogue:" + hashlib.sha256(request.build_absolute_uri().encode()).hexdigest()
    try:
        found = cache.get_many([GENERATION_KEY, key])
        generation = found.get(GENERATION_KEY)
        if generation is None:
            cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
            generation = cache.get(GENERATION_KEY)
    except Exception:  # the cache is down: serve from the database
        return build()
    entry = found.get(key)
    if entry is not None and entry[0] == generation:
        return HttpResponse(entry[1], content_type="application/json")
    response = build()
    if response.status_code == status.HTTP_200_OK and generation is not None:
        with contextlib.suppress(Exception):  # a cache that is down caches nothing
            cache.set(
                key, (generation, JSONRenderer().render(response.data)), settings.CATALOGUE_CACHE_SECONDS
            )
    return response
