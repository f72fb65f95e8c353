"""Languages of chat comments: which language a comment is in, and the per-language text folding.

    identify(text, expected=()) -> LanguageGuess     ranked candidate languages to moderate with
    fold(text, lang) -> str                          script-specific folding of already normalised text
    SUPPORTED                                        language code -> English name

onair moderates eleven languages: English plus Arabic, Dutch, French, German,
Hindi (Devanagari and romanised), Italian, Mandarin, Polish, Portuguese and
Spanish.  A comment may get several candidates (code-switching, very short
text): filters run for each.
"""

from .identify import SUPPORTED, LanguageGuess, identify
from .script import fold

__all__ = ["SUPPORTED", "LanguageGuess", "fold", "identify"]
