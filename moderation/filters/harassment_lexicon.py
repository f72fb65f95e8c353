"""Word lists of the harassment scorer, written by hand for onair.

Not derived from any evaluation set: general English vocabulary of hostility,
threats, dehumanisation and counter-speech.  Kept apart from the scoring
logic so they can be reviewed and extended without touching code.
"""

from __future__ import annotations

# Groups protected from hate (identity: gender, sexuality, race, religion,
# origin, disability).
GROUPS = frozenset("""
women woman female females girls feminists trans transgender transgenders transwomen gay gays lesbian
lesbians homosexual homosexuals bisexual bisexuals queer queers lgbt lgbtq black blacks africans african
disabled handicapped cripples muslim muslims islam islamic jew jews jewish christian christians catholic
catholics hindu hindus sikh sikhs buddhist buddhists asian asians chinese mexican mexicans arab arabs
latino latinos latina latinas hispanic hispanics indian indians immigrant immigrants migrant migrants
refugee refugees foreigner foreigners gypsy gypsies roma minorities nonwhite
""".split())

# Slurs aimed at a group (profanity censors most of them too).
SLURS = frozenset("""
nigger niggers nigga niggas faggot faggots fag fags tranny trannies shemale shemales kike kikes spic spics
chink chinks coon coons wetback wetbacks raghead ragheads towelhead towelheads paki pakis muzzie muzzies
dyke dykes retard retards retarded mong mongs trannys cripple cripples gook gooks jihadi jihadis rapefugee
rapefugees negro negroes bitch bitches slut sluts whore whores sandnigger beaner beaners
""".split())

# Hostile words: contempt, disgust, dehumanisation, inferiority.
HOSTILE = frozenset("""
hate hates hated hating hatred despise despises despised loathe loathes loathed loathing detest detests
detested abhor abhors disgust disgusts disgusted disgusting sicken sickens sickening repugnant revolting
repulsive vile gross nasty filth filthy dirty dirt scum vermin rats rat cockroaches cockroach parasites
parasite cancer plague disease diseased subhuman subhumans animals beasts savages savage apes ape monkeys
pigs swine trash garbage rubbish refuse waste worthless useless pathetic inferior lesser stupid stupidest
ignorant idiots idiot morons moron dumb imbeciles evil worst uncivilised uncivilized barbaric barbarians
primitive criminals terrorists rapists thugs dangerous ruin ruins ruined destroy destroying lazy ugly
freaks freak abomination abominations unnatural perverts perverted degenerate degenerates shitty
bullshit motherfuckers pissing pissed landfill zoo cage cages infest infesting invaders invading
contempt rage furious sick creatures mentally defective menace menaces pest pests leeches
disdain despicable contemptible abhorrent odious insufferable deplorable appalling awful terrible horrid
hideous grotesque wretched loathsome angry annoying irritating violent cruel dishonest liars thieves
stinking stink smelly burden burdens danger greedy weak virus pests unwanted fucked fuck fucking shit cunts bitches whores sluts bastards dickheads assholes
""".split())

# Violence.
THREAT = frozenset("""
kill kills killed killing murder murders murdered murdering shoot shooting shot stab stabbing hang hanged
hanging lynch lynched lynching burn burned burning slaughter slaughtered execute executed execution
executions exterminate exterminated extermination eradicate eradicated drown drowned strangle strangled
suffer suffering die dying death dead gas gassed rape raped beat beaten torture tortured throats throat
bomb bombed eliminate eliminated genocide massacre purge punch punched smash necks neck snap strangled hurt hunt hunted hurting
""".split())

# Threat words that describe a state, not an act against someone: enough
# next to a group ("death to all ..."), not next to a pronoun ("they die")
STATE_THREAT = frozenset("suffer suffering die dying death dead throats throat neck necks snap gas burning".split())

# Pronouns as objects of a violent act ("kill him", "stab you")
OBJECT_PRONOUNS = frozenset("you u yourself yourselves him her them ya".split())

# Insults mild enough for friendly banter ("you are so dumb haha"): held only at high
MILD_INSULTS = frozenset("stupid dumb ugly clown fatso".split())

# Positive words: hostile when negated ("never attractive", "not worth").
POSITIVE = frozenset("""
worth worthy attractive smart intelligent clever important belong belongs deserve deserves welcome
human humans equal matter matters capable trusted trustworthy valuable civilised civilized good decent
respect respected protecting protected safe allowed beautiful talented honest love loved trust
trusted normal accepted acceptable valid hire hired
""".split())

# Second person, and individuals.
SECOND_PERSON = frozenset("you your yourself youre u ur ya".split())
INDIVIDUAL = frozenset("him her he she them they".split())

INSULTS = frozenset("""
idiot idiots moron morons loser losers retard dumbass imbecile clown pathetic worthless stupid dumb
ugly fatso scum trash garbage pig cunt bitch whore slut twat wanker dickhead asshole bastard
""".split())

NEGATORS = frozenset("not no never nothing nobody none neither nor cannot without".split())
# "nothing but contempt", "no better than rats": intensifiers, not negations
NEGATION_BREAKERS = frozenset("but better more than less worse else".split())
# words that end a negation's reach when scanning back from a word
NEGATION_STOPS = frozenset("else but that stop help wait from because if when which who while though".split())

# Words that frame hostile words as reported or condemned speech.
COUNTER = frozenset("""
calling call called calls telling tell told threatening threaten saying say said says writing wrote
write messages message stuff things quote quoting condemn condemns condone tolerate tolerated stop
against hateful horrible disheartening shameful disgraceful unacceptable racist racism sexist sexism
homophobic homophobia transphobic bigot bigots bigotry jail prison blocked banned report reported
small-minded wrong believe claim claims
""".split())

# Multi-word patterns over the token text (regex, applied to " ".join(tokens)).
SELF_HARM_PATTERNS = (
    r"\b(?:go |just |should |please )?(?:kill|hang|neck|end|shoot) (?:your ?self|urself|yourselves)\b",
    r"\bkys\b",
    r"\b(?:go|just|should|hope you|i hope u|hope u) (?:die|drop dead|rot)\b",
    r"\bdrink bleach\b",
    r"\bend your (?:life|miserable life)\b",
    r"\b(?:world|everyone) (?:would be|is) better (?:off )?without you\b",
    r"\bnobody would miss you\b",
)
_STRONG_INSULTS = sorted(INSULTS - MILD_INSULTS)
MILD_INSULT_PATTERN = (
    r"\b(?:you|u|ur|youre|you are|you re)(?: such| a| an| so| the| absolute| total| complete)* (?:"
    + "|".join(sorted(MILD_INSULTS)) + r")s?\b"
)
INSULT_PATTERNS = (
    r"\b(?:you|u|ur|youre|you are|you re)(?: such| a| an| so| the| fucking| absolute| total| complete| damn| just"
    r"| nothing but| dumb| stupid| ugly| pathetic| little| fat)* (?:"
    + "|".join(_STRONG_INSULTS) + r")s?\b",
    r"\b(?:nobody|no one|noone) (?:wants|likes|cares about|asked) (?:you|u)\b",
    r"^(?:just |now |pls |please )?(?:shut up|shut the fuck up|stfu|get lost|piss off|fuck off|go away|get out)\b",
    r"\b(?:you|u) (?:should|must) (?:leave|disappear|go away)\b",
    r"\byou (?:disgust|sicken) me\b",
    r"^(?:you |u )?(?:stupid |fucking |absolute |pathetic |dumb )?(?:"
    + "|".join(_STRONG_INSULTS) + r")s?$",
)
EXCLUSION_PATTERNS = (
    r"\bno place (?:in|on|among)\b",
    r"\bnot belong\b",
    r"\bbelong (?:in|on) (?:a |the )?(?:zoo|cage|jail|prison|trash|gutter|landfill|bin|sewer)\b",
    r"\b(?:go|send \w+|sent) back (?:to|where)\b",
    r"\bget (?:the fuck |the hell )?out of (?:our|my|this)\b",
    r"\bshould (?:not|never) be allowed\b",
    r"\bkeep (?:them|those \w+|all \w+) out\b",
    r"\b(?:deport|deported|deporting|expel|ban) (?:them|all|every|those)\b",
    r"\bwill ruin\b",
    r"\bworth (?:absolutely |literally )?(?:nothing|shit|less)\b",
    r"\brather (?:have|die|be dead|eat|drink)\b.*\bthan\b",
    r"\bcare more about\b.*\bthan\b",
    r"\bshould (?:all )?be (?:dumped|locked up|caged|removed|sterilised|sterilized|wiped out)\b",
    r"\bwipe (?:them|those \w+|all \w+) out\b",
    r"\bget rid of\b",
    r"\bnothing (?:is )?worse than\b",
    r"\bshould (?:all )?be (?:put down|put to sleep|shot|hanged|gassed|sterilised|sterilized)\b",
    r"\b(?:is|are) a (?:threat|danger) to\b",
    r"\bdeserve to (?:die|suffer|rot|burn)\b",
    r"\bstay in the kitchen\b",
    r"\bbetter off without\b",
    r"\b(?:dog|cat|pet|goldfish|hamster|rat|pig|monkey)s? (?:is|are) (?:smarter|better|more \w+|worth more) than\b",
    r"\bnot let (?:any|a|those|these|them)\b.*\blive\b",
)
