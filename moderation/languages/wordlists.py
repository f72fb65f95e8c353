"""Per-language profanity and slur lists (LDNOOBW), compiled for censoring in the comment's language.

Source: "List of Dirty, Naughty, Obscene, and Otherwise Bad Words" (LDNOOBW),
CC BY 4.0, as published in the npm package `naughty-words` 1.2.0; the lists
are copied unchanged into `wordlists/<code>.txt` (provenance and licence in
that folder).  English keeps better-profanity's list (`filters/profanity`).

The lists mix profanity with everyday words (Italian "pesce" fish and
"regina" queen, Portuguese "cerveja" beer, Dutch "pot", Chinese 奶 milk) and
with names of identities (Portuguese "bissexual", Spanish "travesti"): those
are exempt (`EVERYDAY`), because censoring them would hit ordinary chat and
the groups themselves.  Slurs stay listed.

Matching is done on the normalised comment (`moderation.normalize`, which
keeps each character's span of the original, so the original is censored),
with Arabic letter variants folded; whole words only, except:
- Mandarin: anywhere (no spaces), entries of two characters or more;
- German: entries of five letters or more also match as the first or last
  part of a compound ("Scheißkerl", "Drecksfotze");
- Polish: single words of four letters or more take up to three letters of
  inflection ("kurwa", "kurwo", "kurwy");
- romanised Hindi: any vowel may be doubled ("gaand" / "gand").
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from ..normalize import Normalized, normalize
from .script import fold_arabic

__all__ = ["LANGUAGES", "EVERYDAY", "load_list", "compile_list", "find_listed"]

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wordlists")
LANGUAGES = ("ar", "nl", "fr", "de", "hi", "it", "zh", "pl", "pt", "es")

EVERYDAY: dict[str, frozenset[str]] = {k: frozenset(v.split("|")) for k, v in {
    "es": "asesinato|asno|concha|drogas|esperma|heroína|infierno|martillo|nazi|orina|pezón|racista|semen|sexo|"
          "sexo oral|travesti|trio|vulva|caca|pedo|pis|maldito|idiota|haciendo el amor|prostituta",
    "pt": "aborto|amador|ânus|aranha|ariano|bissexual|bumbum|burro|camisinha|cerveja|clitoris|cocaína|coito|comer|"
          "consolo|fecal|frango assado|heroína|heterosexual|homem gay|homoerótico|homosexual|inferno|lésbica|lolita|"
          "mama|pênis|pinto|saco|torneira|vibrador|chupar|gozar|passar um cheque|dum raio|grelho|transar|boob|cu",
    "it": "bagnarsi|battere|biga|brinca|cadavere|casci|cozza|fava|mona|monta|montare|nave scuola|pesce|pompa|porco|"
          "quaglia|regina|spagnola|tirare|topa|vacca|vangare|sbattere|patacca|pippa|picio|pisello|pomiciare|"
          "rizzarsi|tarzanello|zio cantante|anale|femminuccia|finocchio|mannaggia|porca miseria|pistolotto|"
          "ruffiano|goldone|balle|palle|cesso|lofare|loffa|loffare|pincare|tette|belino|bofilo|soccia|socmel",
    "fr": "baiser|bitte|bordel|bourré|bourrée|caca|clitoris|folle|gerbe|gerber|gueule|jouir|ménage à trois|meuf|"
          "pipi|péter|tanche|ramoner|trique|suce|con",
    "de": "bonze|fratze|kimme|lümmel|mufti|nackt|nippel|orgasmus|penis|pinkeln|popel|rosette|schabracke|möpse|"
          "porno|ische|milf|bimbo",
    "nl": "anita|asbak|balen|bekken|beurt|boemelen|buffelen|del|dombo|gat|gedoogzone|griet|hol|huisdealer|johny|"
          "kanen|knor|matje|muts|naakt|paal|palen|poot|pot|potverdorie|raaskallen|remsporen|reutelen|schatje|"
          "slempen|spuiten|standje|stootje|sufferd|toeter|vergallen|watje|zaadje|zuigen|zuiplap|kwakkie|penoze|"
          "gadverdamme|nicht|eikel|flikken|bedonderen|belazeren|pijpen|kanen|beffen|poep|poepen|piesen|tongzoeng",
    "pl": "jajko|jajco|syf|dmuchać|pieprzyć|burdel|rzygać|cyc|zajebisty",
    "hi": "maal|pataka|patakha|saala|kutta|suar|hawas|najayaz|hijda|hijra|mutth|tharak",
    "zh": "刚度|处女|交配|九游|屁股|包皮|外阴|13.|13点|十三点|乳房|乳头|口肯|姣西",
    "ar": "ثدي|شهوة|جماع|احتلام|خنثي|مبادل|لعق|لحس|مص|تمص|بيضان|اغتصاب|حلمة|فرج",
}.items()}


def load_list(lang: str) -> list[str]:
    """The LDNOOBW list of `lang` as shipped (one entry a line)."""
    with open(os.path.join(_DIR, f"{lang}.txt"), encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def _match_form(entry: str) -> str:
    return fold_arabic(normalize(entry).text).strip()


def _pattern(lang: str, entry: str) -> str | None:
    body = re.escape(entry).replace(r"\ ", r"\W+")
    if lang == "zh":
        return body if len(entry) >= 2 else None
    if lang == "hi":
        body = re.sub(r"([aeiou])", r"\1+", body)
    if lang == "de" and len(entry) >= 5 and " " not in entry:
        stem = re.escape(entry[:-1]) if len(entry) >= 6 and entry.endswith("e") else body
        return rf"(?<!\w){stem}\w*|\w*{body}(?!\w)"
    if lang == "pl" and len(entry) >= 4 and " " not in entry:
        stem = re.escape(entry[:-1]) if entry[-1] in "aeiouy" else body
        return rf"(?<!\w){stem}\w{{0,3}}(?!\w)"
    return rf"(?<!\w){body}(?!\w)"


@lru_cache(maxsize=None)
def compile_list(lang: str) -> re.Pattern[str] | None:
    """One regex for the list of `lang` minus its everyday words; None for a language without a list."""
    if lang not in LANGUAGES:
        return None
    skip = {_match_form(w) for w in EVERYDAY.get(lang, ())}
    entries = sorted({_match_form(w) for w in load_list(lang)} - skip - {""}, key=lambda e: (-len(e), e))
    pats = [p for p in (_pattern(lang, e) for e in entries) if p]
    return re.compile("|".join(f"(?:{p})" for p in pats)) if pats else None


def find_listed(norm: Normalized, lang: str) -> list[tuple[int, int]]:
    """Spans of the *original* text that the list of `lang` matches."""
    rx = compile_list(lang)
    if rx is None:
        return []
    text = norm.text
    if lang == "ar":
        folded = [fold_arabic(c) or "\u200b" for c in text]   # keep one slot per character
        text = "".join(c[:1] for c in folded)
    return [norm.original_span(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]
