"""What `check-config` and `run` warn about: probably a mistake, but not invalid. A misspelled
variable is ignored as it stands, so it gets a "did you mean"; a Live Events queue Canvas will
not deliver to is named."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from consumer.config import LIVE_EVENTS_PREFIX, PREFIX, Settings, from_env


@functools.cache
def known_variables() -> frozenset[str]:
    """Every SIS_CONSUMER_* variable `from_env` reads, learned by letting it read an empty
    environment: a variable added there is known here, with no list to keep in step."""
    asked: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            asked.add(key)
            return default

    from_env(Recording())
    return frozenset(n for n in asked if n.startswith(PREFIX))


def warnings(env: Mapping[str, str], settings: Settings) -> list[str]:
    """What is probably a mistake but not invalid: a misspelled variable (ignored as it stands),
    a Live Events queue Canvas will not deliver to."""
    found = []
    known = known_variables()
    for name in sorted(k for k in env if k.startswith(PREFIX) and k not in known):
        # Compared without the prefix every name shares, or everything looks alike.
        suffixes = [k.removeprefix(PREFIX) for k in known]
        close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.75)
        hint = f": did you mean {PREFIX}{close[0]}?" if close else ""
        found.append(f"{name} is not a setting of sis-consumer and is ignored{hint}")
    queue = urlsplit(settings.queue_url or "").path.rpartition("/")[2]
    if queue and not queue.startswith(LIVE_EVENTS_PREFIX):
        found.append(
            f"{PREFIX}QUEUE_URL: Canvas Data Services delivers only to queues named "
            f"{LIVE_EVENTS_PREFIX}*; {queue} will receive no Live Events unless something else feeds it"
        )
    return found
