# ruff: noqa: RUF001, RUF002 (look-alike letters from other scripts are the point here)
"""Category rules for prompts: sexual content, minors, violence, self-harm and hate.

The text is first brought to one canonical form, so the simple tricks do not get through:
case, width and compatibility forms (NFKC), accents, look-alike letters from other scripts
(Cyrillic `а`, Greek `ο`), invisible characters, leetspeak inside words (`s3x`, `k1ll`),
letters spaced or dotted apart (`n u d e`, `n.u.d.e`), and stretched letters (`nuuude`,
matched by the patterns themselves); distinctive phrases are also looked for with every
space removed. Rules are phrases and co-occurrences rather than
single words, so the ordinary uses of "shoot", "kill" or "naked" pass ("shoot a portrait",
"kill the process", "the naked eye"). Per-tenant terms use the same canonical form.

Slurs are stored ROT13-encoded so that reading this file does not mean reading them.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SEXUAL, MINORS, VIOLENCE, SELF_HARM, HATE = "sexual", "minors", "violence", "self-harm", "hate"
TENANT = "tenant"

_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ϲ": "c", "ς": "s", "σ": "o", "μ": "u",
    # Latin look-alikes and ligatures NFKC leaves
    "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "+": "t"})
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff]")
_TOKEN = re.compile(r"\S+")
_LEETABLE = re.compile(r"[0-9@$!|€+]")
# Inside a word, these join letters ("n.u.d.e", "se-x", "k*ll").
_JOINERS = re.compile(r"(?<=[a-z])[._\-*~'`^:,]+(?=[a-z])")
# Three or more single letters separated by spaces or symbols: "n u d e", "k i l l".
_SPACED = re.compile(r"\b(?:[a-z][\s._\-*~]+){2,}[a-z]\b")


def _leet(token: str) -> str:
    """Digits and symbols are letters only inside a word that has letters: "s3x" is sex,
    "1024" stays a number and "4 kids" stays four kids."""
    if _LEETABLE.search(token) and any(c.isalpha() for c in token):
        core = token.strip(".,;:?!()[]{}\"'")
        if not core or not any(c.isalpha() for c in core):
            return token
        return token.replace(core, core.translate(_LEET))
    return token


def _join(run: str, article: bool) -> str:
    letters = re.sub(r"[\s._\-*~]+", "", run)
    # "a n u d e" is "a nude" as likely as "anude": the article form is tried too.
    if article and len(letters) > 3 and letters[0] in "ai":
        return letters[0] + " " + letters[1:]
    return letters


def canonical(text: str, *, article: bool = False) -> str:
    """The form every rule and tenant term is matched against."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    text = text.translate(_HOMOGLYPHS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))
    text = " ".join(_leet(token) for token in _TOKEN.findall(text))
    text = _JOINERS.sub("", text)
    text = _SPACED.sub(lambda m: _join(m.group(0), article), text)
    return re.sub(r"[^a-z0-9\s]+", " ", text).strip()


def _stretch(word: str) -> str:
    """A pattern for `word` that also matches it with any letter repeated ("kiiill")."""
    return "".join(f"{re.escape(c)}+" if c.isalpha() else re.escape(c) for c in word)


def _words(words: Iterable[str]) -> str:
    return "(?:" + "|".join(_stretch(w).replace(r"\ ", r"\s+") for w in words) + ")"


def _rot13(words: Iterable[str]) -> list[str]:
    return [codecs.decode(w, "rot13") for w in words]


@dataclass(frozen=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None  # a benign phrase that explains the match

    def matches(self, text: str) -> bool:
        for match in self.pattern.finditer(text):
            if self.unless is None:
                return True
            start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
            if not self.unless.search(text[start:end]):
                return True
        return False


def _rule(category: str, pattern: str, unless: str | None = None) -> Rule:
    return Rule(category, re.compile(rf"\b{pattern}\b"),
                re.compile(unless) if unless else None)


SEXUAL_TERMS = ["nude", "nudes", "nudity", "naked", "porn", "porno", "pornography",
                "pornographic", "nsfw", "sex", "sexual", "sexually", "explicit sex", "erotic",
                "erotica", "genitals", "genitalia", "penis", "vagina", "boobs", "tits",
                "topless", "bottomless", "orgasm", "intercourse", "blowjob", "handjob",
                "hentai", "fetish", "bdsm", "xxx", "masturbating", "masturbation", "undressed",
                "without clothes", "no clothes", "stripping", "lewd", "onlyfans"]
MINOR_TERMS = ["child", "children", "kid", "kids", "boy", "boys", "schoolgirl", "schoolgirls",
               "schoolboy", "teen", "teens", "teenage", "teenager", "underage", "minor",
               "minors", "toddler", "infant", "baby", "preteen", "little girl", "little boy",
               "young girl", "young boy", "12 year old", "13 year old", "14 year old",
               "15 year old", "16 year old", "17 year old", "12yo", "13yo", "14yo", "15yo"]
MINOR_SEXUAL = ["loli", "lolicon", "shota", "shotacon", "jailbait", "child porn", "cp porn",
                "pedo", "pedophile", "paedophile", "csam"]
HARM_VERBS = ["kill", "killing", "murder", "murdering", "stab", "stabbing", "shoot", "shooting",
              "behead", "beheading", "strangle", "strangling", "torture", "torturing",
              "slaughter", "slaughtering", "execute", "executing", "lynch", "lynching",
              "rape", "raping", "burn alive", "dismember", "massacre", "bomb", "blow up"]
TARGETS = ["him", "her", "them", "people", "person", "man", "woman", "men", "women", "child",
           "children", "kid", "kids", "baby", "family", "president", "police", "cops",
           "officer", "teacher", "students", "classmates", "coworkers", "boss", "wife",
           "husband", "girlfriend", "boyfriend", "neighbor", "neighbour", "everyone",
           "crowd", "hostage", "hostages", "civilians", "prisoner", "victim", "school",
           "mosque", "church", "synagogue", "jews", "muslims", "christians", "immigrants"]
GORE = ["gore", "gory", "decapitated", "decapitation", "beheaded", "dismembered",
        "dismemberment", "mutilated", "mutilation", "disemboweled", "disembowelled",
        "entrails", "bloodbath", "mass shooting", "school shooting", "snuff",
        "torture porn", "blood soaked corpse", "severed head", "severed heads",
        "bomb making", "make a bomb", "pipe bomb"]
SELF_HARM_TERMS = ["kill myself", "killing myself", "suicide", "suicidal", "self harm",
                   "selfharm", "self harming", "cut myself", "cutting myself", "hang myself",
                   "hanging myself", "end my life", "ending my life", "slit my wrists",
                   "slit wrists", "want to die", "overdose on", "take my own life"]
GROUPS = ["jews", "jewish people", "muslims", "christians", "blacks", "black people",
          "whites", "white people", "asians", "arabs", "mexicans", "immigrants", "refugees",
          "gays", "gay people", "lesbians", "trans people", "transgender people", "women",
          "gypsies", "roma", "hindus", "sikhs", "africans", "latinos", "chinese people"]
DEHUMANISING = ["vermin", "animals", "subhuman", "subhumans", "rats", "cockroaches",
                "parasites", "inferior", "a disease", "scum", "filth", "not human", "apes"]
ERADICATE = ["kill all", "exterminate", "exterminate all", "gas the", "gas all", "wipe out",
             "wipe out all", "eradicate", "eradicate all", "deport all", "hang all",
             "death to", "burn all"]
HATE_PHRASES = ["heil hitler", "white power", "white supremacy", "white supremacist",
                "ethnic cleansing", "racial purity", "nazi propaganda", "sieg heil",
                "gas chamber for", "final solution", "14 words", "kkk rally"]
# ROT13 of slurs (see the module docstring).
SLURS = _rot13(["avttre", "avttref", "avttn", "avttnf", "snttbg", "snttbgf", "snt", "xvxr",
                "xvxrf", "fcvp", "fcvpf", "puvax", "puvaxf", "jrgonpx", "jrgonpxf",
                "genaal", "genaavrf", "enturnq", "enturnqf", "tbbx", "tbbxf", "pbba",
                "pbbaf", "qlxr", "qlxrf", "xnssve", "fnaqavttre"])

RULES: tuple[Rule, ...] = (
    # Minors first: a sexual prompt that mentions a child is about minors.
    _rule(MINORS, _words(MINOR_SEXUAL)),
    _rule(MINORS, rf"{_words(MINOR_TERMS)}\b.*\b{_words(SEXUAL_TERMS)}"),
    _rule(MINORS, rf"{_words(SEXUAL_TERMS)}\b.*\b{_words(MINOR_TERMS)}"),
    _rule(SELF_HARM, _words(SELF_HARM_TERMS), unless=r"suicide squad|suicide prevention"),
    _rule(HATE, _words(SLURS)),
    _rule(HATE, _words(HATE_PHRASES)),
    _rule(HATE, rf"{_words(GROUPS)}\s+(?:are|is|r)\s+(?:all\s+|just\s+|nothing but\s+)?"
                rf"{_words(DEHUMANISING)}"),
    _rule(HATE, rf"{_words(ERADICATE)}\s+(?:the\s+|of\s+the\s+)?{_words(GROUPS)}"),
    _rule(VIOLENCE, _words(GORE)),
    # A harm verb aimed at a person, with at most a determiner and one word between.
    _rule(VIOLENCE, rf"{_words(HARM_VERBS)}\s+(?:(?:the|a|an|my|his|her|their|this|that|"
                    rf"those|these|some|all|every|our|your)\s+)?(?:[a-z]+\s+)?"
                    rf"{_words(TARGETS)}",
          unless=r"\b(?:photo|portrait|picture|video|film|scene|headshot|camera)\b"),
    _rule(SEXUAL, _words(SEXUAL_TERMS),
          unless=r"naked eye|nude (?:colou?r|tone|tones|lipstick|palette|shade|heels|beige)"
                 r"|sex education|sex of the|the naked truth"),
)


# Phrases distinctive enough to be found with every space and symbol removed, which
# undoes spacing that also spaces out the gaps between words ("k i l l  m y s e l f").
COMPACT: tuple[tuple[str, str], ...] = tuple(
    (category, phrase.replace(" ", ""))
    for category, phrases in ((MINORS, MINOR_SEXUAL), (SELF_HARM, SELF_HARM_TERMS),
                              (HATE, HATE_PHRASES), (VIOLENCE, GORE))
    for phrase in phrases if " " in phrase and len(phrase.replace(" ", "")) >= 8)


@dataclass(frozen=True)
class Finding:
    category: str


def check(text: str, tenant_terms: Sequence[str] = ()) -> Finding | None:
    """The first category the text falls in, or None."""
    forms = {canonical(text), canonical(text, article=True)}
    for rule in RULES:
        if any(rule.matches(form) for form in forms):
            return Finding(rule.category)
    compact = re.sub(r"[^a-z]+", "", canonical(text))
    for category, phrase in COMPACT:
        if phrase in compact:
            return Finding(category)
    for term in tenant_terms:
        normalised = canonical(term)
        if normalised and any(re.search(rf"\b{_words([normalised])}\b", form)
                              for form in forms):
            return Finding(TENANT)
    return None
