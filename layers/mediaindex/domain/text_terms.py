"""Query terms: the words of a text that carry its meaning, normalised so that spelling variants meet.

Both the embedded full-text query and the search service's lexical evidence use these, so a stray
"to" or "the" never decides a ranking. Numbers are folded to digits ("three" and "3" are one term) and
plurals and common suffixes are stripped (a light stemmer: enough for `coverage`, which only needs
both sides normalised the same way)."""

from __future__ import annotations

import re

_RSQUO = "\u2019"  # a typographic apostrophe, as in don\u2019t
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# English function words (the union of the usual short lists); content words are everything else.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here
    here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
    let's me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves out
    over own same shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this those through
    to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's will with won't would wouldn't you you'd you'll
    you're you've your yours yourself yourselves also just get got gets""".split()  # noqa: SIM905
)

_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBERS.update(
    {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80"}
)
_NUMBERS.update({"ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000"})


def words(text: str) -> list[str]:
    """Lower-case words, apostrophes kept inside a word ("don't"), punctuation dropped."""
    return _WORD.findall(text.lower().replace(_RSQUO, "'"))


def stem(word: str) -> str:
    if word in _NUMBERS:
        return _NUMBERS[word]
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """The words of `text` minus stopwords, in order, each once; all of them when every word is a
    stopword (a query like "to be or not to be" still means something)."""
    all_words = list(dict.fromkeys(words(text)))
    content = [w for w in all_words if w not in STOPWORDS]
    return content or all_words


def query_terms(query: str) -> set[str]:
    """The normalised content terms a query asks for."""
    return {stem(w) for w in content_words(query)}


def coverage(wanted: set[str], text: str | None) -> float:
    """Share of the query's terms (`query_terms`) found in `text`, in [0, 1]."""
    if not wanted or not text:
        return 0.0
    return len(wanted & {stem(w) for w in words(text)}) / len(wanted)
