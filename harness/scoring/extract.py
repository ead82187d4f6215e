"""Answer extraction: a final reply -> an answer, or ``None``.

Extraction is kept apart from comparison (:mod:`harness.scoring.metrics`): ``extract_*`` never
raise on arbitrary text. Every extractor reads the last ``\\boxed{...}`` first. Each public
docstring states the rules it applies (choice tiers and ambiguity, number parsing).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

# --------------------------------------------------------------------------- text helpers

_BOXED = re.compile(r"\\boxed\s*\{")
_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|textsf|texttt|mathrm|mathbf|mathit|emph)\s*\{")
_DOLLAR = re.compile(r"(?<!\\)\$")
_ESCAPED = re.compile(r"\\([%$&_#{}])")


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the ``}`` closing a ``{`` opened just before ``start``; escaped braces skipped."""
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (``\\boxed {x}`` too), nested braces balanced.

    ``None`` when there is no ``\\boxed`` or when the last one is never closed (a truncated
    reply): an earlier, closed box is not used in its place. ``\\boxed{}`` gives ``""``.
    """
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    end = _closing_brace(text, start)
    return None if end is None else text[start:end]


def strip_latex(s: str) -> str:
    """Unwrap ``\\text{}``, ``\\textbf{}``, ``\\mathrm{}`` (and kin), drop ``$`` math delimiters
    and unescape ``\\% \\$ \\& \\_ \\# \\{ \\}``. An unclosed wrapper loses only its head."""
    out = s
    while (m := _WRAPPER.search(out)) is not None:
        end = _closing_brace(out, m.end())
        if end is None:
            out = out[: m.start()] + out[m.end() :]
        else:
            out = out[: m.start()] + out[m.end() : end] + out[end + 1 :]
    out = _DOLLAR.sub("", out)
    return _ESCAPED.sub(r"\1", out)


def normalize_text(s: str) -> str:
    """Strip, lower-case and collapse inner whitespace to single spaces."""
    return " ".join(s.strip().lower().split())


_SPAN_MARKER = re.compile(r"(?i)\banswer\s*(?:is\s*)?[:：]|\banswer\s+is\b")


def _tidy(span: str) -> str:
    span = span.strip().strip("*`").strip()
    return span[:-1].rstrip() if span.endswith(".") else span


def extract_answer_span(text: str | None) -> str | None:
    """The free-text answer of a final reply, or ``None`` when there is none.

    In order: the last boxed content (LaTeX stripped); else the rest of the line after the
    last "answer is" / "Answer:" marker (or the next non-empty line when that rest is empty);
    else the last non-empty line. Markdown ``*``/backticks at the ends and one trailing period
    are removed; an empty result is ``None``.
    """
    if not text or not text.strip():
        return None
    boxed = extract_boxed(text)
    if boxed is not None:
        span = strip_latex(boxed)
    else:
        markers = list(_SPAN_MARKER.finditer(text))
        if markers:
            rest = text[markers[-1].end() :].lstrip(" \t*`:")
            lines = [line for line in rest.splitlines() if line.strip(" \t*`")]
            span = lines[0] if lines else ""
        else:
            span = [line for line in text.splitlines() if line.strip()][-1]
    tidy = _tidy(span)
    return tidy or None


def _clean(text: str) -> str:
    return strip_latex(unicodedata.normalize("NFKC", text)).replace("*", "").replace("`", "")


# --------------------------------------------------------------------------- choices

_OPEN = r"[\s(\[{\"'<]*"
_SINGLE = re.compile(_OPEN + r"([A-Za-z])[\s)\]}\"'>.:,;!]*")
_MARKER = re.compile(
    r"(?:\b(?i:(?:final\s+)?answer(?:\s+is)?|(?:best|correct|right|final)\s+(?:option|choice)"
    r"(?:\s+is)?|(?:option|choice)(?=\s*[:：])))"
    r"\s*[:：=\-]?\s*(?i:(?:option|choice)\s+)?" + _OPEN + r"([A-Z])(?![A-Za-z0-9])"
    r"(?:[\s)\]}\"']*(?:or|and|/|,|&)[\s(\[{\"']*([A-Z])(?![A-Za-z0-9]))?"
)
_LINE_LEAD = re.compile(r"^[ \t>#\-]*[(\[]?([A-Z])(?:[)\]]|[.:](?!\w)|[ \t]*$)", re.MULTILINE)
_STANDALONE = re.compile(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9])")
_WORD_AFTER = re.compile(r"\s+([a-z]+)")
_LETTER_FOLLOWERS = frozenset(
    str.split(
        "is was would seems appears looks matches fits best correctly describes shows corresponds "
        "or and nor vs versus because since"
    )
)
_NOT_WORD = re.compile(r"[\W_]+")


def _is_english_word(span: str, index: int) -> bool:
    """True for the article "A" / pronoun "I" at ``index``: followed by a lower-case word other
    than a verb or connective ("A dog is" -> article; "A is correct", "A or B" -> letters)."""
    if span[index] not in "AI":
        return False
    m = _WORD_AFTER.match(span, index + 1)
    return m is not None and m.group(1) not in _LETTER_FOLLOWERS


def _norm_option(s: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", s).lower()).split())


def _decide(named: set[str], valid: str) -> tuple[str | None, bool]:
    if len(named) == 1 and (letter := next(iter(named))) in valid:
        return letter, True
    return None, bool(named)


def _choice_in(span: str, valid: str, texts: Sequence[str]) -> tuple[str | None, bool]:
    """Apply the tiers to ``span``: (letter or None, whether any tier named something)."""
    if (m := _SINGLE.fullmatch(span)) is not None:
        return _decide({m.group(1).upper()}, valid)
    named: set[str] = set()
    for m in _MARKER.finditer(span):
        first = m.group(1)
        if first in valid or not _is_english_word(span, m.start(1)):
            named.add(first)
        if m.group(2) is not None and m.group(2) in valid:
            named.add(m.group(2))
    if named:
        return _decide(named, valid)
    named = {m.group(1) for m in _LINE_LEAD.finditer(span) if m.group(1) in valid}
    if named:
        return _decide(named, valid)
    if texts:
        keys = [_norm_option(t) for t in texts]
        markers = list(_SPAN_MARKER.finditer(span))
        lines = [line for line in span.splitlines() if line.strip()]
        candidates = [span, lines[-1] if lines else ""]
        if markers:
            candidates.append(span[markers[-1].end() :].split("\n")[0])
        for candidate in candidates:
            key = _norm_option(candidate)
            hits = {valid[i] for i, k in enumerate(keys) if key and k == key}
            if hits:
                return _decide(hits, valid)
    named = {
        m.group(1)
        for m in _STANDALONE.finditer(span)
        if m.group(1) in valid and not _is_english_word(span, m.start(1))
    }
    return _decide(named, valid)


def extract_choice(text: str | None, options: int | Sequence[str]) -> str | None:
    """The option letter ("A", "B", ...) a reply chose, or ``None``.

    ``options`` is the number of options or their texts (then a reply made only of one
    option's text also counts; case, whitespace and punctuation are ignored, whole option
    only). The last boxed content is read first; if it names nothing the whole text is read.
    Tiers, the first that names anything decides, and two different letters there give
    ``None``: (0) the span is one letter, any case ("C", "(c)", "C."); (1) explicit markers
    "answer is X", "Answer: X", "best/correct option: (X)", "X or Y" after a marker naming
    both; (2) lines starting "C.", "(C)", "C)", "C:" or a letter alone on its line; (3) option
    text; (4) exactly one distinct standalone upper-case option letter, where "A"/"I" followed
    by a lower-case word other than a verb or connective ("is", "or") are English words.
    Letters beyond the number of options are never returned; a marker naming one gives None.
    """
    if isinstance(options, str):
        raise TypeError("options must be an int or a sequence of option texts, not a str")
    n = options if isinstance(options, int) else len(options)
    if not 1 <= n <= 26:
        raise ValueError(f"number of options must be in 1..26, got {n}")
    if text is None or not text.strip():
        return None
    valid = string.ascii_uppercase[:n]
    texts: Sequence[str] = () if isinstance(options, int) else options
    boxed = extract_boxed(text)
    if boxed is not None:
        letter, found = _choice_in(_clean(boxed).strip(), valid, texts)
        if found:
            return letter
    return _choice_in(_clean(text).strip(), valid, texts)[0]


# --------------------------------------------------------------------------- counts

_UNIT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_UNITS = {w: i for i, w in enumerate(str.split(_UNIT_WORDS + " fifteen sixteen seventeen eighteen nineteen"))}
_TENS = {
    w: 10 * i for i, w in enumerate(str.split("twenty thirty forty fifty sixty seventy eighty ninety"), 2)
}
_SCALES = {"dozen": 12, "hundred": 100, "thousand": 1000}
_NONE_WORDS = frozenset({"no", "none", "nothing"})
_TOKEN = re.compile(r"(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?|[a-z]+")
_ORDINAL = re.compile(r"st|nd|rd|th")


def _numbers(span: str) -> tuple[list[int], bool]:
    """All counts named in ``span`` in order, and whether a "no"/"none" word occurs."""
    s = unicodedata.normalize("NFKC", span).lower().replace("\u2212", "-")
    tokens = list(_TOKEN.finditer(s))
    out: list[int] = []
    negation = False
    phrase: tuple[int, int] | None = None  # (thousands part, rest) of the number words read
    last = ""  # kind of the previous word in the phrase: unit, teen, tens, scale
    for i, m in enumerate(tokens):
        word = m.group(0)
        nxt = tokens[i + 1].group(0) if i + 1 < len(tokens) else ""
        if word in ("a", "an") and nxt in _SCALES:
            word = "one"
        kind = "unit" if word in _UNITS and _UNITS[word] < 10 else "teen" if word in _UNITS else ""
        kind = "tens" if word in _TENS else "scale" if word in _SCALES else kind
        continues = kind == "scale" or last == "scale" or (kind == "unit" and last == "tens")
        if kind and phrase is not None and not continues:
            out.append(sum(phrase))
            phrase = None
        if kind:
            total, current = phrase or (0, 0)
            if word == "thousand":
                total, current = (total + max(current, 1)) * 1000, 0
            elif kind == "scale":
                current = max(current, 1) * _SCALES[word]
            else:
                current += _UNITS.get(word, _TENS.get(word, 0))
            phrase, last = (total, current), kind
            continue
        if word == "and" and last == "scale" and (nxt in _UNITS or nxt in _TENS):
            continue
        if phrase is not None:
            out.append(sum(phrase))
            phrase = None
        negation = negation or word in _NONE_WORDS
        if m.group(1) is None:
            continue
        before = s[m.start() - 2 : m.start()] if m.start() >= 2 else " " + s[: m.start()]
        negative = before.endswith("-") and not before[0].isalnum()
        integral = m.group(2) is None or not m.group(2).strip(".0")
        if negative or not integral or _ORDINAL.match(s, m.end()):
            continue
        out.append(int(m.group(1).replace(",", "")))
    if phrase is not None:
        out.append(sum(phrase))
    return out, negation


def extract_count(text: str | None) -> int | None:
    """The count a TallyQA reply gives, or ``None``.

    Reads the last boxed content if any (LaTeX stripped), else ``extract_answer_span``; no
    fallback to the rest of the reply. Takes the last number there: digits ("4", "1,000" with
    exact 3-digit groups, "4.0"), number words ("four", "twenty-one", "one hundred and five",
    "a dozen" = 12, "two dozen" = 24). Not counts, hence skipped: ordinals ("3rd"), negatives
    ("-3"), decimals with a fraction ("2.5"). "no", "none", "nothing" give 0 only when the span
    names no number ("There are no dogs" -> 0, "No, there are 3" -> 3).
    """
    if text is None or not text.strip():
        return None
    boxed = extract_boxed(text)
    span = strip_latex(boxed) if boxed is not None else extract_answer_span(text)
    if span is None:
        return None
    numbers, negation = _numbers(span)
    if numbers:
        return numbers[-1]
    return 0 if negation else None
