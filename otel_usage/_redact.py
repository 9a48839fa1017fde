"""Which parameter names and dict keys hold secrets: :class:`Redactor`, and the :data:`REDACTED` marker."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

__all__ = ["DEFAULT_FRAGMENTS", "REDACTED", "Redactor"]

#: What stands in place of the value of a sensitive name.
REDACTED = "[REDACTED]"

#: Built-in name fragments of :class:`Redactor` (normalized: lower case, separators removed).
DEFAULT_FRAGMENTS: tuple[str, ...] = (
    "password", "passwd", "passphrase", "pwd", "secret", "token", "auth", "authorization", "bearer",
    "jwt", "cookie", "session", "credential", "api_key", "apikey", "private_key", "access_key",
    "credit_card", "card_number", "cvv", "cvc", "ssn", "otp", "csrf", "xsrf",
)  # fmt: skip

_WORD_END_BELOW = 6  # fragments shorter than this only match at the end of a word
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_]+")
_CACHE_MAX = 4096  # most names whose answer is cached
_MAX_CACHED_NAME = 256  # longest name whose answer is cached


def _words(name: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(name)]


class Redactor:
    """Decides which parameter names and dict keys hold secrets.

    A name is split into words (on ``-``, ``_``, spaces and other punctuation, and on camelCase), and
    matched case-insensitively against name fragments with the separators removed. A fragment of 6
    characters or more matches anywhere (``password`` in ``db_password``, ``userpassword``,
    ``passwords``); a shorter one must end a word, so ``auth`` matches ``auth``, ``oauth``,
    ``basic_auth`` and ``authToken`` but not ``author`` or ``authority``, and ``token`` matches
    ``access_token`` and ``csrftoken`` but not ``max_tokens`` or ``tokenizer``.

    The built-in fragments (:data:`DEFAULT_FRAGMENTS`): password, passwd, passphrase, pwd, secret, token,
    auth, authorization, bearer, jwt, cookie, session, credential, api_key, apikey, private_key,
    access_key, credit_card, card_number, cvv, cvc, ssn, otp, csrf, xsrf.
    """

    __slots__ = ("_anywhere", "_cache", "_word_end", "fragments")

    def __init__(self, extra: Iterable[str] = (), defaults: bool = True) -> None:
        """Build a redactor.

        Args:
            extra: more name fragments (a single string counts as one fragment).
            defaults: include the built-in fragments.

        Raises:
            ValueError: a fragment is not a string.
        """
        extra = (extra,) if isinstance(extra, str) else tuple(extra)
        fragments: list[str] = []
        for item in (*(DEFAULT_FRAGMENTS if defaults else ()), *extra):
            if not isinstance(item, str):
                raise ValueError(f"redaction fragments must be strings, got {item!r}")
            normalized = "".join(_words(item))
            if normalized and normalized not in fragments:
                fragments.append(normalized)
        #: The fragments in use, normalized.
        self.fragments: tuple[str, ...] = tuple(fragments)
        self._anywhere = tuple(f for f in fragments if len(f) >= _WORD_END_BELOW)
        self._word_end = tuple(f for f in fragments if len(f) < _WORD_END_BELOW)
        self._cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Redactor(fragments={self.fragments!r})"

    def is_sensitive(self, name: str) -> bool:
        """Whether values named ``name`` must be redacted (answers are cached, the cache is bounded)."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        result = self._match(name)
        if len(name) > _MAX_CACHED_NAME:  # a client-sent name (a query argument) must not pin memory
            return result
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[name] = result
        return result

    def _match(self, name: str) -> bool:
        words = _words(name)
        normalized = "".join(words)
        if any(fragment in normalized for fragment in self._anywhere):
            return True
        if self._word_end and normalized:
            ends = set(itertools.accumulate(len(word) for word in words))
            for fragment in self._word_end:
                start = normalized.find(fragment)
                while start >= 0:
                    if start + len(fragment) in ends:
                        return True
                    start = normalized.find(fragment, start + 1)
        return False
