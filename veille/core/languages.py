"""The language registry: the only place that knows a language Veille reads.

In:  a language code (``fr``, ``en``, ``es``, ``it``, ``de``).
Out: its :class:`Language` entry — name, analysis chain (Snowball stemmer, stop words, elided
     articles), Google News edition, sentence-splitting words, translation pair to the pivot,
     analyzer and field names — and what is built from the table: :func:`analysis_settings`,
     :func:`mapping_properties` and :func:`analysed_fields` (the index templates, veille/core/es.py;
     search fields, veille/core/search.py), :func:`check_code` (config validation),
     :func:`abbreviations` (veille/core/translation.py); :data:`PIVOT`, the language the others are
     translated into (each needs an Argos model ``<code>→PIVOT``).

Every language is analysed by one chain, in Python (veille/core/textmatch.py) and in the index
(the ``veille_<code>`` analyzers :func:`analysis_settings` writes into the articles template):
the standard tokenizer (Unicode word boundaries), lower case, the elided articles (French ``l'``,
``qu'``…, Italian ``dell'``…), the stop words (removed, their position kept, so "poste de police"
still spans three positions), the Snowball stemmer, then ASCII folding. The stemmers read accents
("investigación" and "investigaciones" both become "investig"), so folding comes after them; it
still makes "Pekín" and "Pekin" the same word.

The stop lists are Lucene's (``snowball/<name>_stop.txt`` in lucene-analysis-common), the ones
Elasticsearch names ``_french_``, ``_italian_``…: the index names them, Python holds their words.
Adding a language: one entry below, then the topic rules and labelled articles (README: Languages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Language:
    """Everything Veille knows about one language; the rest of the code asks this entry."""

    code: str  # ISO 639-1, as langdetect, the index fields and the config files write it
    name: str  # in English: GDELT's ``sourcelang``, Argos's and jusText's names, messages
    snowball: str  # the Snowball algorithm, as Lucene names it (Python's is in lower case)
    stopwords_name: str  # Elasticsearch's name for the stop list below
    stopwords: frozenset[str]
    elision: tuple[str, ...] = ()  # articles dropped before an apostrophe: l'État → État
    # Google News's edition when neither the search URL nor the source names a country; the
    # ``hl`` it serves the language under outside that country (Spanish: ``es-419``); whether
    # its ``hl`` always names the region, even at home (English: ``en-US``).
    google_country: str = "US"
    google_hl_abroad: str | None = None
    google_hl_regional: bool = False
    # Sentence splitting (veille/core/translation.py): words written with a period that does not end
    # the sentence, in lower case ("mme", "dott"); those only before a number ("art. 3"); words
    # after a number with a period that make it an ordinal ("am 3. Oktober").
    abbreviations: frozenset[str] = frozenset()
    number_abbreviations: frozenset[str] = frozenset()
    after_ordinal: frozenset[str] = frozenset()

    @property
    def analyzer(self) -> str:
        return f"veille_{self.code}"

    @property
    def fields(self) -> tuple[str, str]:
        """The article fields analysed in this language: ``title_<code>``, ``text_<code>``."""
        return f"title_{self.code}", f"text_{self.code}"

    @property
    def gdelt(self) -> str:
        """GDELT's ``sourcelang`` value: the English name in lower case (``french``)."""
        return self.name.lower()


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

_ITALIAN_STOP = """
ad al allo ai agli all agl alla alle con col coi da dal dallo dai dagli dall dagl dalla dalle di
del dello dei degli dell degl della delle in nel nello nei negli nell negl nella nelle su sul sullo
sui sugli sull sugl sulla sulle per tra contro io tu lui lei noi voi loro mio mia miei mie tuo tua
tuoi tue suo sua suoi sue nostro nostra nostri nostre vostro vostra vostri vostre mi ti ci vi lo la
li le gli ne il un uno una ma ed se perché anche come dov dove che chi cui non più quale quanto
quanti quanta quante quello quelli quella quelle questo questi questa queste si tutto tutti a c e i
l o ho hai ha abbiamo avete hanno abbia abbiate abbiano avrò avrai avrà avremo avrete avranno avrei
avresti avrebbe avremmo avreste avrebbero avevo avevi aveva avevamo avevate avevano ebbi avesti
ebbe avemmo aveste ebbero avessi avesse avessimo avessero avendo avuto avuta avuti avute sono sei è
siamo siete sia siate siano sarò sarai sarà saremo sarete saranno sarei saresti sarebbe saremmo
sareste sarebbero ero eri era eravamo eravate erano fui fosti fu fummo foste furono fossi fosse
fossimo fossero essendo faccio fai facciamo fanno faccia facciate facciano farò farai farà faremo
farete faranno farei faresti farebbe faremmo fareste farebbero facevo facevi faceva facevamo
facevate facevano feci facesti fece facemmo faceste fecero facessi facesse facessimo facessero
facendo sto stai sta stiamo stanno stia stiate stiano starò starai starà staremo starete staranno
starei staresti starebbe staremmo stareste starebbero stavo stavi stava stavamo stavate stavano
stetti stesti stette stemmo steste stettero stessi stesse stessimo stessero stando
"""

_GERMAN_STOP = """
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes
anderm andern anderr anders auch auf aus bei bin bis bist da damit dann der den des dem die das daß
derselbe derselben denselben desselben demselben dieselbe dieselben dasselbe dazu dein deine deinem
deinen deiner deines denn derer dessen dich dir du dies diese diesem diesen dieser dieses doch dort
durch ein eine einem einen einer eines einig einige einigem einigen einiger einiges einmal er ihn
ihm es etwas euer eure eurem euren eurer eures für gegen gewesen hab habe haben hat hatte hatten
hier hin hinter ich mich mir ihr ihre ihrem ihren ihrer ihres euch im in indem ins ist jede jedem
jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein keine keinem keinen keiner keines
können könnte machen man manche manchem manchen mancher manches mein meine meinem meinen meiner
meines mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr sein seine seinem seinen
seiner seines selbst sich sie ihnen sind so solche solchem solchen solcher solches soll sollte
sondern sonst über um und uns unse unsem unsen unser unses unter viel vom von vor während war waren
warst was weg weil weiter welche welchem welchen welcher welches wenn werde werden wie wieder will
wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen
"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _articles(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The language every article is translated into, and searched in across languages: every other
# entry needs an Argos model <code>→PIVOT (`veille models install --all` installs them).
PIVOT = "en"

LANGUAGES: dict[str, Language] = {
    "fr": Language(
        "fr",
        "French",
        "French",
        "_french_",
        _words(_FRENCH_STOP),
        _articles("l m t qu n s j d c jusqu quoiqu lorsqu puisqu"),
        google_country="FR",
        abbreviations=_words(
            "mm mme mmes mlle mlles dr dre pr prof mgr mons gén sgt lt col st ste p ex cf env"
        ),
        number_abbreviations=_words("n art vol chap fig tél"),
    ),
    "en": Language(
        "en",
        "English",
        "English",
        "_english_",
        _words(_ENGLISH_STOP),
        google_country="US",
        google_hl_regional=True,
        abbreviations=_words(
            "mr mrs ms messrs dr prof gen gov sen rep hon jr st capt lt col sgt inc ltd corp co "
            "jan feb aug oct nov dec approx vs cf p pp"
        ),
        number_abbreviations=_words("no vol fig art"),
    ),
    "es": Language(
        "es",
        "Spanish",
        "Spanish",
        "_spanish_",
        _words(_SPANISH_STOP),
        google_country="ES",
        google_hl_abroad="es-419",
        abbreviations=_words(
            "sr sra srta sres sras dña ud uds vd vds lic ing arq cía ee dr dra gral prof aprox p pp"
        ),
        number_abbreviations=_words("nº núm num art cap pág págs tel"),
    ),
    "it": Language(
        "it",
        "Italian",
        "Italian",
        "_italian_",
        _words(_ITALIAN_STOP),
        # Lucene's Italian articles, and the demonstratives that elide as often ("quest'anno").
        _articles(
            "c l all dall dell nell sull coll pell gl agl dagl degl negl sugl un m t s v d quest "
            "quell"
        ),
        google_country="IT",
        abbreviations=_words("sig sigg dott dr prof avv ing arch on sen geom rag ecc"),
        number_abbreviations=_words("n pag pagg art"),
    ),
    "de": Language(
        "de",
        "German",
        "German",
        "_german_",
        _words(_GERMAN_STOP),
        google_country="DE",
        abbreviations=_words("hr fr dr prof bzw vgl ca evtl ggf sog inkl z b str st"),
        number_abbreviations=_words("nr abs art bd"),
        # German writes ordinals with a period: "am 3. Oktober", "im 20. Jahrhundert".
        after_ordinal=_words(
            "januar jänner februar märz april mai juni juli august september oktober november "
            "dezember jahrhundert jahrestag"
        ),
    ),
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


def check_code(code: str) -> str:
    """``code`` when the registry has it, else a ValueError naming the known ones (config
    validation turns it into an error naming the file, line and key)."""
    if code not in LANGUAGES:
        raise ValueError(
            f"{code!r} is not a language of Veille: use one of {', '.join(LANGUAGES)} "
            "(or add it to veille/core/languages.py)"
        )
    return code


def abbreviations() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Every language's sentence-splitting words, merged: ``(abbreviations, number
    abbreviations, words after an ordinal)``; a paragraph is split before its language is used."""
    entries = LANGUAGES.values()
    return (
        frozenset().union(*(language.abbreviations for language in entries)),
        frozenset().union(*(language.number_abbreviations for language in entries)),
        frozenset().union(*(language.after_ordinal for language in entries)),
    )


def analysed_fields() -> list[str]:
    """Every per-language field a query reads: ``title_<code>``, ``text_<code>`` and the
    translations ``translation.<code>.title``/``.text``, in table order."""
    fields = [name for language in LANGUAGES.values() for name in language.fields]
    return fields + [
        f"translation.{code}.{part}" for code in LANGUAGES for part in ("title", "text")
    ]


def mapping_properties() -> dict[str, Any]:
    """The articles mapping's per-language properties: ``title_<code>``/``text_<code>`` and
    ``translation.<code>.{title,text}``, each analysed with the language's analyzer."""
    properties: dict[str, Any] = {}
    translations: dict[str, Any] = {}
    for code, language in LANGUAGES.items():
        analysed = {"type": "text", "analyzer": language.analyzer}
        title, text = language.fields
        properties[title] = dict(analysed)
        properties[text] = dict(analysed)
        translations[code] = {"properties": {"title": dict(analysed), "text": dict(analysed)}}
    properties["translation"] = {"properties": translations}
    return properties
