"""A synthetic news corpus: article pages and the feeds that list them, made from word lists.

In:  the number of articles and a seed.
Out: :class:`Corpus`, a map from URL path to ``(content type, bytes)``: nine outlets (three per
     language: French, English, Spanish), each with feed pages of ``FEED_SIZE`` RSS entries and
     article pages shaped like real news pages (30–80 KB of HTML: ``<head>`` metadata, JSON-LD,
     inline CSS and analytics scripts, a navigation bar, the article of 400–900 words, a sidebar
     of most-read links, related-article cards, a footer of link columns). About half the articles
     are about the shipped topic (Chinese overseas police stations), the rest are other news and
     are dropped as off topic; one in forty is a syndicated copy of another outlet's article.

Everything is generated from the templates and word lists below, deterministically: the same
``(count, seed)`` gives byte-identical pages in any process, so the server and the baselines can
each build their own copy. Nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

FEED_SIZE = 50
ON_TOPIC_SHARE = 0.5
SYNDICATED_EVERY = 40

OUTLETS = {
    "fr": ["le-guetteur", "la-depeche-du-soir", "l-observatoire"],
    "en": ["the-sentinel", "evening-courier", "harbour-times"],
    "es": ["el-atalaya", "diario-del-sur", "la-cronica"],
}
OUTLET_LANGUAGE = {outlet: lang for lang, names in OUTLETS.items() for outlet in names}
OUTLET_NAMES = [outlet for names in OUTLETS.values() for outlet in names]
COUNTRY = {"fr": "FR", "en": "GB", "es": "ES"}

# Sentence parts per language: subject, verb phrase, object, place, time. On-topic sentences
# draw their objects from TOPIC, off-topic ones from OTHER.
WORDS: dict[str, dict[str, list[str]]] = {
    "fr": {
        "subject": [
            "Le ministère de l'Intérieur", "La préfecture", "Un porte-parole du gouvernement",
            "Les enquêteurs", "Une élue locale", "Le maire de la ville", "Les syndicats",
            "Une source proche du dossier", "Le procureur de la République", "Les habitants",
            "La commission parlementaire", "Un avocat des plaignants", "Les associations",
            "Le directeur de l'établissement", "Une chercheuse de l'université", "Les riverains",
        ],
        "verb": [
            "a annoncé", "a confirmé", "dénonce", "conteste", "examine", "a révélé",
            "s'inquiète de", "réclame des explications sur", "a documenté", "suit de près",
            "a longuement évoqué", "ne commente pas", "a présenté", "met en cause",
        ],
        "topic": [
            "l'existence d'un commissariat chinois clandestin", "les postes de police chinois",
            "la répression transnationale visant la diaspora",
            "les pressions de la police chinoise",
            "le rapport de Safeguard Defenders", "les antennes liées au bureau de Fuzhou",
            "l'ingérence étrangère de Pékin", "la surveillance des Ouïghours exilés",
            "les activités du Front uni", "les menaces contre des dissidents chinois",
            "l'enquête de la GRC sur deux commissariats", "les opérations dites 110 Overseas",
        ],
        "other": [
            "le nouveau budget de la région", "la rénovation de la gare centrale",
            "la hausse du prix de l'énergie", "le calendrier des travaux du tramway",
            "la saison des vendanges", "la réforme des retraites", "le festival de musique",
            "la fermeture d'une usine de pneus", "les résultats du championnat régional",
            "la pénurie de médecins généralistes", "le plan de circulation du centre-ville",
            "la construction d'un nouveau lycée", "les inondations de l'automne dernier",
        ],
        "place": [
            "à Paris", "à Lyon", "à Montréal", "à Marseille", "dans le quartier nord",
            "en Île-de-France", "à Bordeaux", "devant le tribunal", "à l'Assemblée nationale",
            "dans plusieurs villes européennes", "à Toulouse", "à Québec",
        ],
        "time": [
            "mardi soir",
            "depuis plusieurs mois", "cette semaine", "lors d'une conférence de presse",
            "dans un communiqué publié lundi", "au début de l'année", "jeudi matin",
            "selon nos informations", "à la fin du mois dernier", "pour la deuxième fois",
        ],
        "quote": ["« Nous ne laisserons rien passer », a-t-il déclaré.",
                  "« Les faits sont graves et documentés », estime-t-elle.",
                  "« Il faudra du temps pour tout vérifier », reconnaît un responsable."],
        "nav": ["International", "Politique", "Société", "Économie", "Culture", "Sports",
                "Sciences", "Idées", "Régions", "Vidéos", "Podcasts", "Météo"],
        "chrome": ["Lire aussi", "Les plus lus", "Newsletter", "S'abonner", "Mentions légales",
                   "Publicité", "Nous contacter", "Partager", "Voir les commentaires"],
    },
    "en": {
        "subject": [
            "The Home Office", "Police officials", "A government spokesperson", "Investigators",
            "A local councillor", "The city's mayor", "Union leaders", "A source close to the case",
            "The prosecutor", "Residents", "A parliamentary committee", "Lawyers for the families",
            "Community groups", "The school's head teacher", "A university researcher",
            "Neighbours",
        ],
        "verb": [
            "announced", "confirmed", "condemned", "disputed", "is examining", "revealed",
            "raised concerns about", "demanded answers on", "documented", "is closely following",
            "spoke at length about", "declined to comment on", "presented", "blamed officials for",
        ],
        "topic": [
            "a secret Chinese police station", "the overseas police stations run from China",
            "transnational repression targeting the diaspora", "pressure from Chinese police",
            "the Safeguard Defenders report", "outposts linked to the Fuzhou bureau",
            "foreign interference by Beijing", "surveillance of exiled Uyghurs",
            "United Front activities", "threats against Chinese dissidents",
            "the RCMP inquiry into two police stations", "the so-called 110 Overseas operations",
        ],
        "other": [
            "the regional budget", "the refurbishment of the central station",
            "rising energy prices", "the timetable for the tram works", "the harvest season",
            "the pension reform", "the music festival", "the closure of a tyre factory",
            "the results of the county league", "the shortage of family doctors",
            "the city centre traffic plan", "the construction of a new secondary school",
            "last autumn's floods",
        ],
        "place": [
            "in London", "in Manchester", "in Toronto", "in Glasgow", "in the north of the city",
            "across the region", "in Leeds", "outside the courthouse", "in Parliament",
            "in several European cities", "in Bristol", "in Vancouver",
        ],
        "time": [
            "on Tuesday evening", "for several months", "this week", "at a press conference",
            "in a statement released on Monday", "earlier this year", "on Thursday morning",
            "according to people familiar with the matter",
            "late last month", "for the second time",
        ],
        "quote": ["\u201cWe will not let this pass,\u201d he said.",
                  "\u201cThe facts are serious and well documented,\u201d she said.",
                  "\u201cIt will take time to check everything,\u201d an official admitted."],
        "nav": ["World", "Politics", "Business", "Culture", "Sport", "Science", "Opinion",
                "Regions", "Video", "Podcasts", "Weather", "Travel"],
        "chrome": ["Read more", "Most read", "Newsletter", "Subscribe", "Terms of use",
                   "Advertising", "Contact us", "Share", "View comments"],
    },
    "es": {
        "subject": [
            "El Ministerio del Interior", "La policía", "Un portavoz del Gobierno",
            "Los investigadores", "Una concejala", "El alcalde de la ciudad", "Los sindicatos",
            "Una fuente cercana al caso", "La fiscalía", "Los vecinos",
            "La comisión parlamentaria", "El abogado de las familias", "Las asociaciones",
            "El director del centro", "Una investigadora de la universidad", "Los comerciantes",
        ],
        "verb": [
            "anunció", "confirmó", "denuncia", "cuestiona", "examina", "reveló",
            "se preocupa por", "exige explicaciones sobre", "documentó", "sigue de cerca",
            "habló largamente de", "no comenta", "presentó", "responsabiliza a las autoridades de",
        ],
        "topic": [
            "la existencia de una comisaría china clandestina",
            "las comisarías chinas en el extranjero",
            "la represión transnacional contra la diáspora", "las presiones de la policía china",
            "el informe de Safeguard Defenders", "las oficinas vinculadas al buró de Fuzhou",
            "la injerencia extranjera de Pekín", "la vigilancia de los uigures exiliados",
            "las actividades del Frente Unido", "las amenazas contra disidentes chinos",
            "la investigación sobre dos comisarías clandestinas", "las operaciones 110 Overseas",
        ],
        "other": [
            "el nuevo presupuesto regional", "la reforma de la estación central",
            "la subida del precio de la energía", "el calendario de obras del tranvía",
            "la temporada de vendimia", "la reforma de las pensiones", "el festival de música",
            "el cierre de una fábrica de neumáticos", "los resultados de la liga regional",
            "la falta de médicos de familia", "el plan de tráfico del centro",
            "la construcción de un nuevo instituto", "las inundaciones del otoño pasado",
        ],
        "place": [
            "en Madrid", "en Barcelona", "en Valencia", "en Sevilla", "en el barrio norte",
            "en toda la región", "en Bilbao", "ante el juzgado", "en el Congreso",
            "en varias ciudades europeas", "en Zaragoza", "en Málaga",
        ],
        "time": [
            "el martes por la noche", "desde hace varios meses", "esta semana",
            "en una rueda de prensa", "en un comunicado publicado el lunes", "a principios de año",
            "el jueves por la mañana", "según fuentes consultadas", "a finales del mes pasado",
            "por segunda vez",
        ],
        "quote": ["«No vamos a dejar pasar esto», declaró.",
                  "«Los hechos son graves y están documentados», afirmó.",
                  "«Llevará tiempo comprobarlo todo», reconoció un responsable."],
        "nav": ["Internacional", "Política", "Sociedad", "Economía", "Cultura", "Deportes",
                "Ciencia", "Opinión", "Regiones", "Vídeos", "Pódcasts", "El tiempo"],
        "chrome": ["Lee también", "Lo más leído", "Boletín", "Suscríbete", "Aviso legal",
                   "Publicidad", "Contacto", "Compartir", "Ver comentarios"],
    },
}  # fmt: skip

FIRST_NAMES = ["Camille", "Jordan", "Lucía", "Marc", "Aisha", "Tomás", "Hélène", "Owen", "Inés"]
LAST_NAMES = ["Martin", "Reyes", "Dubois", "Walsh", "García", "Lefèvre", "Okafor", "Navarro"]
EPOCH = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)

_CSS = "".join(
    f".c{n}{{margin:{n % 7}px {n % 5}px;padding:{n % 3}px;color:#{n * 2654435 % 0xFFFFFF:06x};"
    f"font-size:{12 + n % 9}px;line-height:1.{n % 9}}}\n"
    for n in range(60)
)
_SCRIPT_UNIT = (
    'window.dataLayer=window.dataLayer||[];dataLayer.push({{"event":"pageview","slot":"{n}",'
    '"targeting":{{"pos":"atf","kw":["news","{n}"],"consent":true}}}});'
    'function ad{n}(e){{var s=document.createElement("script");s.async=!0;'
    's.src="/static/ads/"+e+".js?v={n}";document.head.appendChild(s)}}\n'
)


@dataclass(frozen=True)
class ArticleSpec:
    """What one generated article is: where it lives, its language, whether it is on topic."""

    number: int
    outlet: str
    language: str
    path: str
    title: str
    published_at: datetime
    on_topic: bool
    syndicated_from: int | None = None


@dataclass
class Corpus:
    """Every page of the generated sites, by URL path, and the sources that list the feeds."""

    count: int
    seed: int
    articles: list[ArticleSpec] = field(default_factory=list)
    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    # Each article's body text as written (see article_page), by URL path.
    truth: dict[str, str] = field(default_factory=dict)

    def feeds(self, outlet: str) -> list[str]:
        return sorted(p for p in self.pages if p.startswith(f"/{outlet}/feed-"))

    def article_pages(self) -> list[tuple[str, bytes]]:
        """``(path, html)`` of every article page, in article order."""
        return [(a.path, self.pages[a.path][1]) for a in self.articles]

    def sources(self, base_url: str) -> list[dict]:
        """sources.yaml entries: one feed source per outlet, its feed pages as URLs."""
        return [
            _source(outlet, [base_url + path for path in self.feeds(outlet)])
            for outlet in OUTLET_NAMES
            if self.feeds(outlet)
        ]

    def site_pages(self, outlet: str, base_url: str) -> dict[str, tuple[str, bytes]]:
        """The outlet as a site of its own at ``base_url``: a home page that announces one RSS
        feed (``/feed.xml``), that feed listing every article of the outlet, and robots.txt.

        For crawlers that find a site's feed on its home page (news-please's RSS mode).
        """
        mine = [spec for spec in self.articles if spec.outlet == outlet]
        home = (
            f'<!DOCTYPE html>\n<html lang="{OUTLET_LANGUAGE[outlet]}"><head><meta charset="utf-8">'
            f"<title>{outlet}</title>"
            f'<link rel="alternate" type="application/rss+xml" title="{outlet}" href="/feed.xml">'
            f"</head><body><h1>{outlet}</h1></body></html>\n"
        )
        return {
            "/": ("text/html; charset=utf-8", home.encode("utf-8")),
            "/feed.xml": ("application/rss+xml", feed_page(outlet, mine, base_url, 1)),
            "/robots.txt": self.pages["/robots.txt"],
        }

    def site_sources(self, site_urls: dict[str, str]) -> list[dict]:
        """sources.yaml entries for the sites of :meth:`site_pages`: each outlet's one feed."""
        return [_source(outlet, [url + "/feed.xml"]) for outlet, url in site_urls.items()]


def _source(outlet: str, urls: list[str]) -> dict:
    return {
        "name": outlet,
        "type": "feed",
        "urls": urls,
        "language": OUTLET_LANGUAGE[outlet],
        "country": COUNTRY[OUTLET_LANGUAGE[outlet]],
        "schedule": {"every": "1h"},
    }


def _sentence(rng: random.Random, words: dict[str, list[str]], on_topic: bool) -> str:
    pool = words["topic"] if on_topic and rng.random() < 0.45 else words["other"]
    parts = [
        rng.choice(words["subject"]),
        rng.choice(words["verb"]),
        rng.choice(pool),
        rng.choice(words["place"]),
        rng.choice(words["time"]),
    ]
    if rng.random() < 0.5:
        parts[3], parts[4] = parts[4], parts[3]
    return " ".join(parts) + "."


def _title(rng: random.Random, words: dict[str, list[str]], on_topic: bool) -> str:
    pool = words["topic"] if on_topic else words["other"]
    subject, verb, what = rng.choice(words["subject"]), rng.choice(words["verb"]), rng.choice(pool)
    return f"{subject} {verb} {what} {rng.choice(words['place'])}"


def _paragraphs(rng: random.Random, words: dict[str, list[str]], on_topic: bool) -> list[str]:
    target = rng.randint(400, 900)
    paragraphs: list[str] = []
    count = 0
    while count < target:
        sentences = [_sentence(rng, words, on_topic) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.15:
            sentences.append(rng.choice(words["quote"]))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        count += paragraph.count(" ") + 1
    return paragraphs


def _markup(rng: random.Random, paragraph: str, neighbours: list[ArticleSpec]) -> str:
    """A paragraph with the inline links and emphasis real articles carry."""
    words = escape(paragraph).split(" ")
    for _ in range(rng.randint(0, 3)):
        at = rng.randrange(len(words))
        if rng.random() < 0.5:
            words[at] = f'<a href="{rng.choice(neighbours).path}">{words[at]}</a>'
        else:
            words[at] = f"<strong>{words[at]}</strong>"
    return " ".join(words)


def _icon(name: str) -> str:
    """An inline SVG icon, as news sites put in menus, share bars and buttons."""
    return (
        f'<svg class="icon icon--{name}" viewBox="0 0 24 24" aria-hidden="true"><g fill="none">'
        '<path d="M3 12h18M12 3v18"/><path d="M5 5l14 14"/><circle cx="12" cy="12" r="9"/>'
        "</g></svg>"
    )


def _link(href: str, text: str, cls: str) -> str:
    return (
        f'<li class="{cls}"><a class="{cls}__link" href="{href}" data-track="{cls}">'
        f'<span class="{cls}__label">{escape(text)}</span></a></li>'
    )


def _chrome(outlet: str, language: str) -> tuple[str, str]:
    """The outlet's navigation bar and footer (the same on every page of the outlet)."""
    words = WORDS[language]
    nav_items = []
    for section in words["nav"]:
        slug = section.lower().replace(" ", "-")
        subs = "".join(
            _link(f"/{outlet}/{slug}/{n}/", f"{section} {n}", "nav-sub") for n in range(1, 7)
        )
        nav_items.append(
            f'<li class="nav-item nav-item--{slug}"><a class="nav-link" href="/{outlet}/{slug}/">'
            f'{_icon(slug)}<span>{escape(section)}</span></a><div class="nav-panel">'
            f'<ul class="nav-sub-list">{subs}</ul></div></li>'
        )
    nav = (
        f'<header class="site-header"><div class="top-bar"><a class="logo" href="/{outlet}/">'
        f'<img src="/static/{outlet}/logo.svg" alt="{outlet}" width="180" height="40"></a>'
        '<form class="search" action="/search"><input type="search" name="q"><button>OK</button>'
        f'</form></div><nav class="main-nav" aria-label="sections"><ul class="nav-list">'
        f"{''.join(nav_items)}</ul></nav></header>"
    )
    columns = []
    for column in range(5):
        links = "".join(
            _link(f"/{outlet}/page/{column}-{n}", f"{words['chrome'][n % 9]} {column}{n}", "ft")
            for n in range(12)
        )
        columns.append(f'<div class="footer-col footer-col--{column}"><ul>{links}</ul></div>')
    footer = (
        f'<footer class="site-footer"><div class="footer-cols">{"".join(columns)}</div>'
        f'<p class="legal">© 2025 {outlet}. {escape(" · ".join(words["chrome"]))}</p></footer>'
    )
    return nav, footer


def _specs(count: int, seed: int) -> list[ArticleSpec]:
    rng = random.Random(f"specs-{seed}")
    specs: list[ArticleSpec] = []
    for number in range(count):
        outlet = OUTLET_NAMES[number % len(OUTLET_NAMES)]
        language = OUTLET_LANGUAGE[outlet]
        on_topic = rng.random() < ON_TOPIC_SHARE
        published = EPOCH + timedelta(minutes=17 * number)
        syndicated = None
        if number % SYNDICATED_EVERY == SYNDICATED_EVERY - 1:
            # A copy of a neighbouring article from another outlet of the same language.
            neighbour = number + 1 if number % 3 == 0 else number - 1
            syndicated = neighbour if neighbour < count else None
        title = _title(random.Random(f"title-{seed}-{number}"), WORDS[language], on_topic)
        path = f"/{outlet}/{published:%Y/%m}/article-{number:06d}.html"
        specs.append(
            ArticleSpec(number, outlet, language, path, title, published, on_topic, syndicated)
        )
    for index, spec in enumerate(specs):
        if spec.syndicated_from is not None:
            source = specs[spec.syndicated_from]
            specs[index] = ArticleSpec(
                spec.number, spec.outlet, spec.language, spec.path, source.title,
                spec.published_at, source.on_topic, spec.syndicated_from,
            )  # fmt: skip
    return specs


def article_page(
    spec: ArticleSpec, specs: list[ArticleSpec], seed: int, chrome: tuple
) -> tuple[bytes, str]:
    """One article page of about 30–80 KB, and its body as a reader reads it (the ground truth
    of extraction: the subheading and paragraphs, one per line; not the title, standfirst,
    byline, caption, the "read also" box, comments or anything around the article)."""
    words = WORDS[spec.language]
    body_of = spec.syndicated_from if spec.syndicated_from is not None else spec.number
    rng = random.Random(f"body-{seed}-{body_of}")
    paragraphs = _paragraphs(rng, words, spec.on_topic)
    page_rng = random.Random(f"page-{seed}-{spec.number}")
    author = f"{page_rng.choice(FIRST_NAMES)} {page_rng.choice(LAST_NAMES)}"
    description = paragraphs[0].split(". ")[0].rstrip(".") + "."
    nav, footer = chrome
    published = spec.published_at.isoformat()
    neighbours = [specs[(spec.number + step) % len(specs)] for step in range(1, 17)]
    image = f"/static/{spec.outlet}/img/{spec.number}.jpg"

    body_parts, truth = [], []
    for position, paragraph in enumerate(paragraphs):
        if position == len(paragraphs) // 2:
            heading = _title(page_rng, words, spec.on_topic)
            body_parts.append(f"<h2>{escape(heading)}</h2>")
            truth.append(heading)
        if position == 2:
            other = neighbours[0]
            body_parts.append(
                f'<aside class="read-also"><span>{escape(words["chrome"][0])}</span> '
                f'<a href="{other.path}">{escape(other.title)}</a></aside>'
            )
        body_parts.append(f"<p>{_markup(page_rng, paragraph, neighbours)}</p>")
        truth.append(paragraph)
    most_read = "".join(
        f'<li class="most-read__item"><span class="rank">{n + 1}</span>'
        f'<a href="{other.path}">{escape(other.title)}</a></li>'
        for n, other in enumerate(neighbours[1:11])
    )
    cards = "".join(
        f'<div class="card"><div class="card__media"><a href="{other.path}" tabindex="-1"><picture>'
        f'<source type="image/webp" srcset="/static/{other.outlet}/img/{other.number}.webp">'
        f'<img class="card__img" src="/static/{other.outlet}/img/{other.number}-thumb.jpg" '
        'alt="" loading="lazy" width="320" height="180"></picture></a></div>'
        f'<div class="card__body"><span class="card__kicker">{escape(words["nav"][n])}</span>'
        f'<h3 class="card__title"><a href="{other.path}">{escape(other.title)}</a></h3>'
        f'<div class="card__meta"><span class="card__author">{other.outlet}</span>'
        f"<time>{other.published_at:%d/%m/%Y %H:%M}</time>{_icon('clock')}</div></div></div>"
        for n, other in enumerate(neighbours[4:16])
    )
    json_ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": spec.title,
            "description": description,
            "datePublished": published,
            "dateModified": (spec.published_at + timedelta(hours=2)).isoformat(),
            "author": [{"@type": "Person", "name": author}],
            "publisher": {"@type": "Organization", "name": spec.outlet},
            "image": [image],
            "inLanguage": spec.language,
            "articleSection": words["nav"][spec.number % len(words["nav"])],
        },
        ensure_ascii=False,
    )
    share = "".join(
        f'<button class="share__btn share__btn--{name}" aria-label="{name}">{_icon(name)}</button>'
        for name in ("facebook", "x", "linkedin", "whatsapp", "email", "copy")
    )
    comments = "".join(
        f'<div class="comment" id="c{spec.number}-{n}"><div class="comment__head">'
        f'<span class="comment__author">{page_rng.choice(FIRST_NAMES)}{n}</span>'
        f'<time class="comment__time">{n + 1} h</time></div><div class="comment__body"><p>'
        f"{escape(_sentence(page_rng, words, False))}</p></div>"
        f'<div class="comment__actions"><button class="btn btn--reply">{_icon("reply")}</button>'
        f'<button class="btn btn--like">{_icon("like")}<span class="count">3</span></button></div>'
        "</div>"
        for n in range(page_rng.randint(3, 15))
    )
    scripts = "".join(_SCRIPT_UNIT.format(n=n) for n in range(page_rng.randint(0, 30)))
    title = escape(spec.title)
    page = f"""<!DOCTYPE html>
<html lang="{spec.language}"><head><meta charset="utf-8">
<title>{title} | {spec.outlet}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="{escape(description)}">
<meta name="author" content="{escape(author)}">
<link rel="canonical" href="{spec.path}">
<meta property="og:type" content="article"><meta property="og:title" content="{title}">
<meta property="og:description" content="{escape(description)}">
<meta property="og:image" content="{image}"><meta property="og:site_name" content="{spec.outlet}">
<meta property="article:published_time" content="{published}">
<link rel="stylesheet" href="/static/{spec.outlet}/main.css">
<style>{_CSS}</style>
<script type="application/ld+json">{json_ld}</script>
<script>{scripts}</script>
</head><body class="page page--article">
{nav}
<div class="breadcrumb"><a href="/{spec.outlet}/">{spec.outlet}</a> ›
<a href="/{spec.outlet}/{words["nav"][0].lower()}/">{escape(words["nav"][0])}</a></div>
<main class="layout"><article class="article">
<h1 class="article__title">{title}</h1>
<p class="article__standfirst">{escape(description)}</p>
<div class="byline"><a class="byline__author" rel="author" href="/{spec.outlet}/auteur/">
{escape(author)}</a> <time datetime="{published}">{spec.published_at:%d/%m/%Y %H:%M}</time></div>
<figure class="article__figure"><img src="{image}" alt="" width="1200" height="675">
<figcaption>{escape(spec.title[:60])} (photo {spec.outlet})</figcaption></figure>
<div class="article__wrap"><div class="article__inner"><div class="article__content">
<div class="article__body">{"".join(body_parts)}</div></div></div></div>
<div class="share">{share}</div>
<section class="comments"><h2>{escape(words["chrome"][8])}</h2>{comments}</section>
</article>
<aside class="sidebar"><section class="most-read"><h2>{escape(words["chrome"][1])}</h2>
<ol>{most_read}</ol></section><div class="ad-slot" id="ad-sidebar"></div>
<form class="newsletter"><h2>{escape(words["chrome"][2])}</h2><input type="email"></form></aside>
<section class="related">{cards}</section></main>
{footer}
<script src="/static/{spec.outlet}/app.js" defer></script>
</body></html>
"""
    return page.encode("utf-8"), "\n".join(truth)


def feed_page(outlet: str, entries: list[ArticleSpec], base_url: str, number: int) -> bytes:
    items = "".join(
        f"<item><title>{escape(a.title)}</title><link>{base_url}{a.path}</link>"
        f"<guid>{base_url}{a.path}</guid>"
        f"<pubDate>{a.published_at:%a, %d %b %Y %H:%M:%S} +0000</pubDate></item>\n"
        for a in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{outlet} ({number})</title><link>{base_url}/{outlet}/</link>"
        f"<description>{outlet}</description>\n{items}</channel></rss>\n"
    ).encode()


def build_corpus(count: int, seed: int = 2022, base_url: str = "") -> Corpus:
    """Every page for ``count`` articles. Feeds hold absolute links under ``base_url``."""
    specs = _specs(count, seed)
    corpus = Corpus(count, seed, specs)
    chrome = {outlet: _chrome(outlet, OUTLET_LANGUAGE[outlet]) for outlet in OUTLET_NAMES}
    html = "text/html; charset=utf-8"
    for spec in specs:
        page, corpus.truth[spec.path] = article_page(spec, specs, seed, chrome[spec.outlet])
        corpus.pages[spec.path] = (html, page)
    for outlet in OUTLET_NAMES:
        mine = [s for s in specs if s.outlet == outlet]
        for number, start in enumerate(range(0, len(mine), FEED_SIZE), start=1):
            body = feed_page(outlet, mine[start : start + FEED_SIZE], base_url, number)
            corpus.pages[f"/{outlet}/feed-{number:04d}.xml"] = ("application/rss+xml", body)
    corpus.pages["/robots.txt"] = ("text/plain", b"User-agent: *\nAllow: /\n")
    return corpus
