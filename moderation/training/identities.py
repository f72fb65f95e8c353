"""Names of protected groups written for onair, added to those the training script learns from the templates.

The masker learns identity expressions from the data (the words that differ
within a template), so it knows the seven or so groups each Multilingual
HateCheck language happens to use ("Transmenschen", "Flüchtlinge") and
not the others: "Muslime sind widerliche Parasiten" named no group and
scored 0.21.  These are plural (and some singular) nouns for the groups
HateCheck covers (women, trans, gay and lesbian people, Black people,
disabled people, Muslims, Jews, immigrants, refugees) in each language,
written for onair (no source); the training script prepares them like
comments.  Nouns only: an adjective ("schwarz", "nero") names a colour as
often as a group.  Chinese entries match inside words (no spaces).
"""

from __future__ import annotations

__all__ = ["EXTRA_IDENTITIES"]

EXTRA_IDENTITIES: dict[str, tuple[str, ...]] = {k: tuple(v.split(",")) for k, v in {
    "en": "jews,refugees,lesbians,homosexuals,migrants,black people,muslim women",
    "de": "Muslime,Muslimen,Muslimin,Musliminnen,Ausländer,Ausländern,Migranten,Einwanderer,Einwanderern,"
          "Flüchtlinge,Juden,Jüdinnen,Schwule,Lesben,Homosexuelle,Homosexuellen,Behinderte,Frauen,Transmenschen",
    "fr": "musulmans,musulmanes,immigrés,immigrées,immigrants,migrants,réfugiés,juifs,juives,homosexuels,"
          "lesbiennes,handicapés,femmes,personnes trans,personnes noires",
    "es": "musulmanes,inmigrantes,migrantes,refugiados,judíos,judías,homosexuales,lesbianas,discapacitados,"
          "mujeres,personas trans,personas negras",
    "pt": "muçulmanos,muçulmanas,imigrantes,migrantes,refugiados,judeus,homossexuais,lésbicas,deficientes,"
          "mulheres,pessoas trans,pessoas negras",
    "it": "musulmani,musulmane,immigrati,immigrate,migranti,rifugiati,ebrei,omosessuali,lesbiche,disabili,"
          "donne,persone trans,persone nere",
    "nl": "moslims,moslima's,immigranten,migranten,vluchtelingen,joden,homoseksuelen,lesbiennes,gehandicapten,"
          "vrouwen,transgenders,zwarte mensen",
    "pl": "muzułmanie,muzułmanów,muzułmanami,muzułmanom,imigranci,imigrantów,migranci,uchodźcy,uchodźców,żydzi,"
          "żydów,geje,gejów,homoseksualiści,lesbijki,niepełnosprawni,kobiety,osoby transpłciowe,czarni",
    "hi": "musalman,musalmanon,muslim,muslimon,pravasi,sharanarthi,yahudi,yahudiyon,samlaingik,kinnar,viklang,"
          "auraten,aurton,mahilayen,मुसलमान,मुसलमानों,प्रवासी,शरणार्थी,यहूदी,समलैंगिक,विकलांग,औरतें,महिलाएं",
    "ar": "المسلمين,المسلمون,مسلمين,المهاجرين,المهاجرون,مهاجرين,اللاجئين,اللاجئون,اليهود,يهود,المثليين,"
          "مثليين,النساء,نساء,المعاقين,السود",
    "zh": "穆斯林,移民,难民,犹太人,同性恋,女人,妇女,残疾人,跨性别,黑人",
}.items()}
