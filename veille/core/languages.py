"""The monitored languages' analysis facts, in one table shared by Python and Elasticsearch.

In:  a language code (``fr``, ``en``, ``es``).
Out: its :class:`Language` entry: Snowball stemmer, stop words, elided articles, the analyzer
     and field names; :func:`analysis_settings`, the same chain written for Elasticsearch.

Every language is analysed by one chain, in Python (veille/core/textmatch.py) and in the index
(``veille_<code>`` analyzers of index_config/articles.json, which a test holds equal to
:func:`analysis_settings`): the standard tokenizer (Unicode word boundaries), lower case, the
elided articles (French ``l'``, ``qu'``…), the stop words (removed, their position kept, so
"poste de police" still spans three positions), the Snowball stemmer, then ASCII folding. The
stemmers read accents ("investigación" and "investigaciones" both become "investig"), so folding
comes after them; it still makes "Pekín" and "Pekin" the same word.

The stop lists are Lucene's, the ones Elasticsearch names ``_french_``, ``_english_`` and
``_spanish_``: the index names them, Python holds their words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Language:
    code: str
    snowball: str  # the Snowball algorithm, as Lucene names it (Python's is in lower case)
    stopwords_name: str  # Elasticsearch's name for the stop list below
    stopwords: frozenset[str]
    elision: tuple[str, ...] = ()  # articles dropped before an apostrophe: l'État → État

    @property
    def analyzer(self) -> str:
        return f"veille_{self.code}"

    @property
    def fields(self) -> tuple[str, str]:
        """The article fields analysed in this language: ``title_<code>``, ``text_<code>``."""
        return f"title_{self.code}", f"text_{self.code}"


_FRENCH_STOP = """
au aux avec ce ces dans de des du elle en et eux il je la le leur lui ma mais me même mes moi mon
ne nos notre nous on ou par pas pour qu que qui sa se ses sur ta te tes toi ton tu un une vos
votre vous c d j l à m n s t y étée étées étant suis es êtes sont serai seras sera serons serez
seront serais serait serions seriez seraient étais était étions étiez étaient fus fut fûmes fûtes
furent sois soit soyons soyez soient fusse fusses fussions fussiez fussent ayant eu eue eues eus
ai avons avez ont aurai aurons aurez auront aurais aurait aurions auriez auraient avais avait
aviez avaient eut eûmes eûtes eurent aie aies ait ayons ayez aient eusse eusses eût eussions
eussiez eussent ceci cela celà cet cette ici ils les leurs quel quels quelle quelles sans soi
"""

_ENGLISH_STOP = """
a an and are as at be but by for if in into is it no not of on or such that the their then there
these they this to was will with
"""

_SPANISH_STOP = """
de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya o este
sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante
todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras
otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo nosotros
mi mis tú te ti tu tus ellas nosotras vosotros vosotras os mío mía míos mías tuyo tuya tuyos tuyas
suyo suya suyos suyas nuestro nuestra nuestros nuestras vuestro vuestra vuestros vuestras esos esas
estoy estás está estamos estáis están esté estés estemos estéis estén estaré estarás estará
estaremos estaréis estarán estaría estarías estaríamos estaríais estarían estaba estabas estábamos
estabais estaban estuve estuviste estuvo estuvimos estuvisteis estuvieron estuviera estuvieras
estuviéramos estuvierais estuvieran estuviese estuvieses estuviésemos estuvieseis estuviesen
estando estado estada estados estadas estad he has ha hemos habéis han haya hayas hayamos hayáis
hayan habré habrás habrá habremos habréis habrán habría habrías habríamos habríais habrían había
habías habíamos habíais habían hube hubiste hubo hubimos hubisteis hubieron hubiera hubieras
hubiéramos hubierais hubieran hubiese hubieses hubiésemos hubieseis hubiesen habiendo habido
habida habidos habidas soy eres es somos sois son sea seas seamos seáis sean seré serás será
seremos seréis serán sería serías seríamos seríais serían era eras éramos erais eran fui fuiste
fue fuimos fuisteis fueron fuera fueras fuéramos fuerais fueran fuese fueses fuésemos fueseis
fuesen siendo sido tengo tienes tiene tenemos tenéis tienen tenga tengas tengamos tengáis tengan
tendré tendrás tendrá tendremos tendréis tendrán tendría tendrías tendríamos tendríais tendrían
tenía tenías teníamos teníais tenían tuve tuviste tuvo tuvimos tuvisteis tuvieron tuviera
tuvieras tuviéramos tuvierais tuvieran tuviese tuvieses tuviésemos tuvieseis tuviesen teniendo
tenido tenida tenidos tenidas tened
"""

LANGUAGES: dict[str, Language] = {
    "fr": Language(
        "fr",
        "French",
        "_french_",
        frozenset(_FRENCH_STOP.split()),
        ("l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"),
    ),
    "en": Language("en", "English", "_english_", frozenset(_ENGLISH_STOP.split())),
    "es": Language("es", "Spanish", "_spanish_", frozenset(_SPANISH_STOP.split())),
}
# Articles in a language without an entry (VEILLE_LANGUAGES widened) are analysed as English.
FALLBACK = "en"


def language_of(code: str | None) -> Language:
    """The entry for ``code``, or the fallback's."""
    return LANGUAGES.get(code or FALLBACK) or LANGUAGES[FALLBACK]


def analysis_settings() -> dict[str, Any]:
    """The ``analyzer`` and ``filter`` sections of the index settings for every language."""
    filters: dict[str, Any] = {}
    analyzers: dict[str, Any] = {}
    for language in LANGUAGES.values():
        name = language.analyzer
        chain = ["lowercase"]
        if language.elision:
            filters[f"{name}_elision"] = {"type": "elision", "articles": list(language.elision)}
            chain.append(f"{name}_elision")
        filters[f"{name}_stop"] = {"type": "stop", "stopwords": language.stopwords_name}
        filters[f"{name}_snowball"] = {"type": "snowball", "language": language.snowball}
        chain += [f"{name}_stop", f"{name}_snowball", "asciifolding"]
        analyzers[name] = {"type": "custom", "tokenizer": "standard", "filter": chain}
    return {"filter": filters, "analyzer": analyzers}
