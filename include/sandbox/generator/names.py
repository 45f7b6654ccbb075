"""Name data for the synthetic tenant: one ``Culture`` per naming tradition.

Real tenants mix scripts, so the generator must too: the pipeline's validation, folding and
CSV writing break on exactly these names (diacritics, ligatures such as ß/æ/ł/đ/þ, family-name-
first orders, names without a space, names in non-Latin scripts whose UPN is a romanisation).
Non-Latin names carry their romanisation (``native=roman``) because Entra admins type UPNs in
ASCII; Latin names are folded by ``text.upn_part``. Female surname forms exist where the
language inflects them (Russian, Polish, Greek), so "Анна Иванова" never becomes "Анна Иванов".
"""

from __future__ import annotations

from dataclasses import dataclass

from include.sandbox.generator.text import upn_part

Name = tuple[str, str]
"""(name as written, its lower-case ASCII UPN part)."""


def _latin(spec: str) -> tuple[Name, ...]:
    return tuple((name, upn_part(name)) for name in spec.split("|"))


def _pairs(spec: str) -> tuple[Name, ...]:
    """``native=roman|...``: the roman form is what an admin would type into the UPN."""
    out = []
    for item in spec.split("|"):
        native, _, roman = item.partition("=")
        out.append((native, upn_part(roman)))
    return tuple(out)


def _feminine(names: tuple[Name, ...], rules: tuple[tuple[str, str, str, str], ...]) -> tuple[Name, ...]:
    """Apply (native suffix, native replacement, roman suffix, roman replacement) rules."""
    out = []
    for native, roman in names:
        female = (native, roman)
        for n_suffix, n_repl, r_suffix, r_repl in rules:
            if native.endswith(n_suffix) and roman.endswith(r_suffix):
                female = (native[: len(native) - len(n_suffix)] + n_repl, roman[: len(roman) - len(r_suffix)] + r_repl)
                break
        out.append(female)
    return tuple(out)


@dataclass(frozen=True)
class SalesforceDefaults:
    """Values within the Salesforce emulator's restricted picklists (``salesforce.picklists``)."""

    time_zone: str
    locale: str
    language: str


@dataclass(frozen=True)
class Culture:
    key: str
    weight: float
    given_m: tuple[Name, ...]
    given_f: tuple[Name, ...]
    surnames_m: tuple[Name, ...]
    surnames_f: tuple[Name, ...]
    family_first: bool
    separator: str
    """Between the parts of displayName ("" for Chinese and Korean)."""
    usage_location: str
    country: str
    cities: tuple[str, ...]
    languages: tuple[tuple[str | None, float], ...]
    """preferredLanguage values with weights; None means the property is unset."""
    company_suffix: str
    """``{brand}`` is replaced with the tenant's brand."""
    salesforce: SalesforceDefaults
    double_surname: float = 0.0
    """Share of people with two surnames (Spanish, Portuguese)."""
    phone_prefix: str = "+1"


_EN_US = "en-US"
_SF_US = SalesforceDefaults("America/New_York", "en_US", "en_US")
_SF_US_WEST = SalesforceDefaults("America/Los_Angeles", "en_US", "en_US")
_SF_GB = SalesforceDefaults("Europe/London", "en_GB", "en_US")
_SF_DE = SalesforceDefaults("Europe/Berlin", "de_DE", "de")
_SF_FR = SalesforceDefaults("Europe/Paris", "fr_FR", "fr")
_SF_ES = SalesforceDefaults("Europe/Paris", "es_ES", "es")
_SF_CE = SalesforceDefaults("Europe/Berlin", "en_GB", "en_US")
_SF_JA = SalesforceDefaults("Asia/Tokyo", "ja_JP", "ja")
_SF_ASIA = SalesforceDefaults("Asia/Tokyo", "en_US", "en_US")

_RU_FEM = (
    ("ов", "ова", "ov", "ova"),
    ("ев", "ева", "ev", "eva"),
    ("ёв", "ёва", "ev", "eva"),
    ("ин", "ина", "in", "ina"),
)
_PL_FEM = (("ski", "ska", "ski", "ska"), ("cki", "cka", "cki", "cka"), ("dzki", "dzka", "dzki", "dzka"))

_US_SURNAMES = _latin(
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|Hernandez|Lopez|Gonzalez|"
    "Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Perez|Thompson|White|Harris|Sanchez|Clark|"
    "Ramirez|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|Torres|Nguyen|Hill|Flores|Green|Adams|"
    "Nelson|Baker|Hall|Rivera|Campbell|Mitchell|Carter|Roberts|O'Brien|O'Connor|McDonald|MacKenzie|St. John"
)
_GB_SURNAMES = _latin(
    "Smith|Jones|Williams|Taylor|Davies|Evans|Thomas|Roberts|Walker|Wright|Robinson|Thompson|White|Hughes|"
    "Edwards|Green|Hall|Wood|Harris|Lewis|Clarke|Turner|Hill|Scott|Cooper|Morris|Ward|Moore|King|Watson|"
    "Baker|Harrison|Morgan|Patel|Young|Mitchell|Phillips|Bell|Parker|Fotheringham-Smythe|Ap Rhys|O'Sullivan"
)
_DE_SURNAMES = _latin(
    "Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|Hoffmann|Schäfer|Koch|Bauer|Richter|"
    "Klein|Wolf|Schröder|Neumann|Schwarz|Zimmermann|Braun|Krüger|Hofmann|Hartmann|Lange|Schmitt|Werner|"
    "Krause|Meier|Weiß|Groß|Jäger|Köhler|Böhm|Lösch|von Bülow|von der Heide|Straßburger"
)
_FR_SURNAMES = _latin(
    "Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau|Simon|Laurent|Lefèvre|Michel|"
    "Garcia|David|Bertrand|Roux|Vincent|Fournier|Girard|Bonnet|Dupont|Lambert|Fontaine|Rousseau|Faure|"
    "Mercier|Blanc|Guérin|Boyer|Chevalier|François|Gauthier|Lefèvre-Pontalis|de La Fontaine|Cœur|Bœuf"
)
_ES_SURNAMES = _latin(
    "García|Rodríguez|González|Fernández|López|Martínez|Sánchez|Pérez|Gómez|Martín|Jiménez|Ruiz|Hernández|"
    "Díaz|Moreno|Muñoz|Álvarez|Romero|Alonso|Gutiérrez|Navarro|Torres|Domínguez|Vázquez|Ramos|Gil|Ramírez|"
    "Serrano|Blanco|Castillo|Ortega|Núñez|Ibáñez|Peña|Echeverría|Goikoetxea|de la Cruz"
)
_IT_SURNAMES = _latin(
    "Rossi|Russo|Ferrari|Esposito|Bianchi|Romano|Colombo|Ricci|Marino|Greco|Bruno|Gallo|Conti|De Luca|"
    "Mancini|Costa|Giordano|Rizzo|Lombardi|D'Angelo|Dell'Acqua|Fabbri|Caruso|Moretti|Barbieri|Fontana|"
    "Santoro|Mariani|Rinaldi|Niccolò"
)
_NL_SURNAMES = _latin(
    "de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|Mulder|"
    "de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|de Graaf|"
    "van der Meer|van 't Hof|IJzerman"
)
_BR_SURNAMES = _latin(
    "Silva|Santos|Oliveira|Souza|Rodrigues|Ferreira|Alves|Pereira|Lima|Gomes|Costa|Ribeiro|Martins|"
    "Carvalho|Almeida|Lopes|Soares|Fernandes|Vieira|Barbosa|Araújo|Magalhães|Gonçalves|da Silva|dos Santos|"
    "de Souza|Conceição"
)
_PL_SURNAMES = _latin(
    "Nowak|Kowalski|Wiśniewski|Wójcik|Kowalczyk|Kamiński|Lewandowski|Zieliński|Szymański|Woźniak|"
    "Dąbrowski|Kozłowski|Jankowski|Mazur|Wojciechowski|Kwiatkowski|Krawczyk|Piotrowski|Grabowski|Zając|"
    "Król|Wieczorek|Jabłoński|Michalski|Pawłowski|Łukasiewicz|Żółkiewski|Sołtysik"
)
_NORDIC_SURNAMES = _latin(
    "Andersson|Johansson|Karlsson|Nilsson|Eriksson|Larsson|Olsson|Persson|Svensson|Gustafsson|Hansen|"
    "Johansen|Olsen|Larsen|Jensen|Nielsen|Pedersen|Sørensen|Rasmussen|Jørgensen|Møller|Østergaard|Åberg|"
    "Ødegård|Bjørnstad|Korhonen|Virtanen|Mäkinen|Nieminen|Mäkelä|Hämäläinen|Lähteenmäki|Þórsson|"
    "Guðmundsdóttir|Ærø"
)
_VN_SURNAMES = _latin("Nguyễn|Trần|Lê|Phạm|Hoàng|Huỳnh|Phan|Vũ|Võ|Đặng|Bùi|Đỗ|Hồ|Ngô|Dương|Lý")
_RU_SURNAMES = _pairs(
    "Иванов=ivanov|Смирнов=smirnov|Кузнецов=kuznetsov|Попов=popov|Васильев=vasiliev|Петров=petrov|"
    "Соколов=sokolov|Михайлов=mikhailov|Новиков=novikov|Фёдоров=fedorov|Морозов=morozov|Волков=volkov|"
    "Алексеев=alekseev|Лебедев=lebedev|Семёнов=semenov|Егоров=egorov|Павлов=pavlov|Козлов=kozlov|"
    "Степанов=stepanov|Николаев=nikolaev|Шевченко=shevchenko|Бондаренко=bondarenko|Ильин=ilyin"
)
_GR_SURNAMES_M = _pairs(
    "Παπαδόπουλος=papadopoulos|Παπαγεωργίου=papageorgiou|Οικονόμου=oikonomou|Γεωργίου=georgiou|"
    "Βασιλείου=vasileiou|Νικολάου=nikolaou|Ιωάννου=ioannou|Παππάς=pappas|Καραγιάννης=karagiannis|"
    "Αντωνίου=antoniou|Δημητρίου=dimitriou|Μακρής=makris|Αλεξίου=alexiou|Κωνσταντίνου=konstantinou"
)
_GR_SURNAMES_F = _pairs(
    "Παπαδοπούλου=papadopoulou|Παπαγεωργίου=papageorgiou|Οικονόμου=oikonomou|Γεωργίου=georgiou|"
    "Βασιλείου=vasileiou|Νικολάου=nikolaou|Ιωάννου=ioannou|Παππά=pappa|Καραγιάννη=karagianni|"
    "Αντωνίου=antoniou|Δημητρίου=dimitriou|Μακρή=makri|Αλεξίου=alexiou|Κωνσταντίνου=konstantinou"
)
_JA_SURNAMES = _pairs(
    "佐藤=sato|鈴木=suzuki|高橋=takahashi|田中=tanaka|伊藤=ito|渡辺=watanabe|山本=yamamoto|中村=nakamura|"
    "小林=kobayashi|加藤=kato|吉田=yoshida|山田=yamada|佐々木=sasaki|山口=yamaguchi|松本=matsumoto|"
    "井上=inoue|木村=kimura|林=hayashi|清水=shimizu|斎藤=saito|長谷川=hasegawa"
)
_ZH_SURNAMES = _pairs(
    "王=wang|李=li|张=zhang|刘=liu|陈=chen|杨=yang|黄=huang|赵=zhao|吴=wu|周=zhou|徐=xu|孙=sun|马=ma|"
    "朱=zhu|胡=hu|郭=guo|何=he|高=gao|林=lin|罗=luo|欧阳=ouyang|司马=sima"
)
_KO_SURNAMES = _pairs(
    "김=kim|이=lee|박=park|최=choi|정=jung|강=kang|조=cho|윤=yoon|장=jang|임=lim|한=han|오=oh|서=seo|"
    "신=shin|권=kwon|황=hwang|안=ahn|송=song|류=ryu|홍=hong|남궁=namgung"
)
_AR_SURNAMES = _pairs(
    "العتيبي=alotaibi|الحربي=alharbi|القحطاني=alqahtani|الغامدي=alghamdi|الزهراني=alzahrani|"
    "الشمري=alshammari|منصور=mansour|حداد=haddad|خوري=khoury|سعيد=saeed|عبد الرحمن=abdelrahman|"
    "حسين=hussein|إبراهيم=ibrahim|المصري=almasri|الدوسري=aldosari|يوسف=youssef"
)
_HE_SURNAMES = _pairs(
    "כהן=cohen|לוי=levi|מזרחי=mizrahi|פרץ=peretz|ביטון=biton|דהן=dahan|אברהם=avraham|פרידמן=friedman|"
    "אזולאי=azoulay|כ״ץ=katz|יוסף=yosef|שפירא=shapira|גולן=golan|אוחיון=ohayon|ברק=barak|בן־דוד=ben-david"
)
_HI_SURNAMES = _pairs(
    "शर्मा=sharma|वर्मा=verma|गुप्ता=gupta|सिंह=singh|कुमार=kumar|पटेल=patel|जोशी=joshi|मिश्रा=mishra|"
    "यादव=yadav|अग्रवाल=agarwal|चौहान=chauhan|पांडे=pandey|त्रिपाठी=tripathi|श्रीवास्तव=srivastava|"
    "देसाई=desai|नायर=nair|राव=rao|रेड्डी=reddy"
)

CULTURES: tuple[Culture, ...] = (
    Culture(
        key="en-US",
        weight=20,
        given_m=_latin(
            "James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Christopher|Daniel|"
            "Matthew|Anthony|Mark|Steven|Andrew|Joshua|Kevin|Brian|Ryan|Tyler|Jordan|DeShawn|José"
        ),
        given_f=_latin(
            "Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Lisa|Nancy|Ashley|"
            "Emily|Megan|Olivia|Madison|Hannah|Brittany|Mary-Kate|Renée|Chloë"
        ),
        surnames_m=_US_SURNAMES,
        surnames_f=_US_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="US",
        country="United States",
        cities=("Seattle", "New York", "Chicago", "Austin", "San Francisco", "Atlanta", "Boston"),
        languages=((_EN_US, 0.9), (None, 0.1)),
        company_suffix="{brand}, Inc.",
        salesforce=_SF_US_WEST,
        phone_prefix="+1",
    ),
    Culture(
        key="en-GB",
        weight=6,
        given_m=_latin(
            "Oliver|George|Harry|Jack|Jacob|Charlie|Thomas|Oscar|William|James|Alfie|Henry|Alistair|Nigel|"
            "Graham|Ian|Rhys|Gareth|Siôn"
        ),
        given_f=_latin(
            "Amelia|Olivia|Isla|Emily|Poppy|Ava|Isabella|Jessica|Lily|Sophie|Siobhan|Niamh|Fiona|Gemma|Kirsty|Eìlidh"
        ),
        surnames_m=_GB_SURNAMES,
        surnames_f=_GB_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="GB",
        country="United Kingdom",
        cities=("London", "Manchester", "Edinburgh", "Cardiff", "Reading"),
        languages=((_EN_US, 0.85), (None, 0.15)),
        company_suffix="{brand} Ltd",
        salesforce=_SF_GB,
        phone_prefix="+44",
    ),
    Culture(
        key="de-DE",
        weight=9,
        given_m=_latin(
            "Lukas|Jonas|Leon|Maximilian|Felix|Paul|Jürgen|Günter|Björn|Matthias|Sebastian|Tobias|Stefan|"
            "Thomas|Andreas|Jörg|Hans-Peter|Uwe"
        ),
        given_f=_latin(
            "Sophie|Marie|Hannah|Lena|Jana|Käthe|Ursula|Brigitte|Anja|Sabine|Katharina|Julia|Laura|Lea|"
            "Jülide|Bärbel|Anna-Lena"
        ),
        surnames_m=_DE_SURNAMES,
        surnames_f=_DE_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="DE",
        country="Germany",
        cities=("München", "Berlin", "Hamburg", "Frankfurt am Main", "Köln", "Düsseldorf"),
        languages=(("de-DE", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand} Deutschland GmbH",
        salesforce=_SF_DE,
        phone_prefix="+49",
    ),
    Culture(
        key="fr-FR",
        weight=7,
        given_m=_latin(
            "Jean|Pierre|Michel|François|Jérôme|Stéphane|Sébastien|Benoît|Loïc|Gaël|Hervé|Thierry|Théo|Hugo|"
            "Louis|Jean-Luc|Jean-François"
        ),
        given_f=_latin(
            "Marie|Nathalie|Isabelle|Sylvie|Céline|Hélène|Élodie|Chloé|Léa|Manon|Camille|Zoé|Anaïs|Océane|"
            "Françoise|Marie-Claire|Maëlle"
        ),
        surnames_m=_FR_SURNAMES,
        surnames_f=_FR_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="FR",
        country="France",
        cities=("Paris", "Lyon", "Marseille", "Toulouse", "Lille"),
        languages=(("fr-FR", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand} France SAS",
        salesforce=_SF_FR,
        phone_prefix="+33",
    ),
    Culture(
        key="es-ES",
        weight=6,
        given_m=_latin(
            "José|Antonio|Manuel|Francisco|David|Juan|Javier|Daniel|Carlos|Jesús|Alejandro|Miguel|Rafael|"
            "Pablo|Álvaro|Íñigo|Sergio|Adrián|José María"
        ),
        given_f=_latin(
            "María|Carmen|Ana|Isabel|Laura|Lucía|Cristina|Marta|Sofía|Paula|Elena|Raquel|Inés|Begoña|Nuria|"
            "María José|Ainhoa"
        ),
        surnames_m=_ES_SURNAMES,
        surnames_f=_ES_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="ES",
        country="Spain",
        cities=("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga"),
        languages=(("es-ES", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand} España, S.L.",
        salesforce=_SF_ES,
        double_surname=0.6,
        phone_prefix="+34",
    ),
    Culture(
        key="it-IT",
        weight=3,
        given_m=_latin("Giuseppe|Giovanni|Antonio|Mario|Luca|Marco|Francesco|Alessandro|Andrea|Matteo|Lorenzo|Niccolò"),
        given_f=_latin("Giulia|Francesca|Chiara|Sara|Martina|Alessia|Federica|Elisa|Maria Grazia|Aurora"),
        surnames_m=_IT_SURNAMES,
        surnames_f=_IT_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="IT",
        country="Italy",
        cities=("Milano", "Roma", "Torino", "Bologna"),
        languages=(("it-IT", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand} Italia S.r.l.",
        salesforce=_SF_CE,
        phone_prefix="+39",
    ),
    Culture(
        key="nl-NL",
        weight=3,
        given_m=_latin("Daan|Sem|Lucas|Levi|Bram|Jeroen|Pieter|Joost|Thijs|Sjoerd|Wouter|Ruud|Coën"),
        given_f=_latin("Emma|Julia|Sophie|Tess|Fenna|Anouk|Marloes|Ilse|Femke|Sanne|Ingrid|Loïs"),
        surnames_m=_NL_SURNAMES,
        surnames_f=_NL_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="NL",
        country="Netherlands",
        cities=("Amsterdam", "Rotterdam", "Utrecht", "Eindhoven"),
        languages=(("nl-NL", 0.7), (_EN_US, 0.2), (None, 0.1)),
        company_suffix="{brand} Nederland B.V.",
        salesforce=_SF_CE,
        phone_prefix="+31",
    ),
    Culture(
        key="pt-BR",
        weight=4,
        given_m=_latin(
            "João|José|Antônio|Francisco|Carlos|Paulo|Pedro|Lucas|Luiz|Marcos|Gabriel|Rafael|Thiago|Gonçalo"
        ),
        given_f=_latin(
            "Maria|Ana|Francisca|Antônia|Adriana|Juliana|Márcia|Fernanda|Patrícia|Aline|Letícia|Conceição|Beatriz"
        ),
        surnames_m=_BR_SURNAMES,
        surnames_f=_BR_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="BR",
        country="Brazil",
        cities=("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Florianópolis"),
        languages=(("pt-BR", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand} do Brasil Ltda.",
        salesforce=_SF_US,
        double_surname=0.5,
        phone_prefix="+55",
    ),
    Culture(
        key="pl-PL",
        weight=4,
        given_m=_latin(
            "Jakub|Kacper|Szymon|Michał|Mateusz|Paweł|Łukasz|Krzysztof|Wojciech|Piotr|Tomasz|Grzegorz|Marcin"
        ),
        given_f=_latin("Zofia|Małgorzata|Agnieszka|Katarzyna|Anna|Joanna|Ewa|Magdalena|Żaneta|Bożena|Jadwiga|Alicja"),
        surnames_m=_PL_SURNAMES,
        surnames_f=_feminine(_PL_SURNAMES, _PL_FEM),
        family_first=False,
        separator=" ",
        usage_location="PL",
        country="Poland",
        cities=("Warszawa", "Kraków", "Wrocław", "Gdańsk", "Łódź"),
        languages=((_EN_US, 0.7), (None, 0.3)),
        company_suffix="{brand} Polska Sp. z o.o.",
        salesforce=_SF_CE,
        phone_prefix="+48",
    ),
    Culture(
        key="nordic",
        weight=4,
        given_m=_latin(
            "Lars|Anders|Johan|Erik|Mikael|Björn|Sören|Øyvind|Jørgen|Åke|Håkan|Magnus|Nils|Olav|Mikko|Jukka|Þór"
        ),
        given_f=_latin("Anna|Eva|Ingrid|Karin|Sofia|Maja|Åsa|Linnéa|Sigrid|Solveig|Ane|Päivi|Kristiina|Liv|Siv|Ásdís"),
        surnames_m=_NORDIC_SURNAMES,
        surnames_f=_NORDIC_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="SE",
        country="Sweden",
        cities=("Stockholm", "Göteborg", "Malmö", "Uppsala", "Linköping"),
        languages=((_EN_US, 0.75), (None, 0.25)),
        company_suffix="{brand} Nordic AB",
        salesforce=_SF_CE,
        phone_prefix="+46",
    ),
    Culture(
        key="vi-VN",
        weight=3,
        given_m=_latin(
            "Văn An|Văn Bình|Minh Tuấn|Quốc Huy|Đức Anh|Hoàng Nam|Thành Long|Hữu Phước|Quang Vinh|Tiến Dũng"
        ),
        given_f=_latin(
            "Thị Hương|Thị Lan|Thu Trang|Ngọc Anh|Thị Mai|Phương Linh|Thanh Hằng|Thùy Dung|Bích Ngọc|Kim Oanh"
        ),
        surnames_m=_VN_SURNAMES,
        surnames_f=_VN_SURNAMES,
        family_first=True,
        separator=" ",
        usage_location="VN",
        country="Vietnam",
        cities=("Hà Nội", "Thành phố Hồ Chí Minh", "Đà Nẵng"),
        languages=((_EN_US, 0.6), (None, 0.4)),
        company_suffix="Công ty TNHH {brand} Việt Nam",
        salesforce=_SF_ASIA,
        phone_prefix="+84",
    ),
    Culture(
        key="ru-RU",
        weight=4,
        given_m=_pairs(
            "Александр=aleksandr|Дмитрий=dmitry|Максим=maksim|Сергей=sergey|Андрей=andrey|Алексей=aleksey|"
            "Иван=ivan|Михаил=mikhail|Никита=nikita|Евгений=evgeny|Олександр=oleksandr|Юрий=yuriy"
        ),
        given_f=_pairs(
            "Анна=anna|Мария=maria|Елена=elena|Ольга=olga|Наталья=natalya|Татьяна=tatyana|"
            "Екатерина=ekaterina|Ирина=irina|Юлия=yulia|Светлана=svetlana|Олена=olena"
        ),
        surnames_m=_RU_SURNAMES,
        surnames_f=_feminine(_RU_SURNAMES, _RU_FEM),
        family_first=False,
        separator=" ",
        usage_location="RU",
        country="Russia",
        cities=("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург"),
        languages=((_EN_US, 0.6), (None, 0.4)),
        company_suffix="ООО «{brand} Рус»",
        salesforce=_SF_CE,
        phone_prefix="+7",
    ),
    Culture(
        key="el-GR",
        weight=2,
        given_m=_pairs(
            "Γιώργος=giorgos|Δημήτρης=dimitris|Νίκος=nikos|Κώστας=kostas|Γιάννης=giannis|"
            "Παναγιώτης=panagiotis|Χρήστος=christos|Αλέξανδρος=alexandros|Θανάσης=thanasis|Σπύρος=spyros"
        ),
        given_f=_pairs(
            "Μαρία=maria|Ελένη=eleni|Κατερίνα=katerina|Βασιλική=vasiliki|Σοφία=sofia|Αγγελική=angeliki|"
            "Δέσποινα=despoina|Ειρήνη=eirini|Χριστίνα=christina|Αναστασία=anastasia"
        ),
        surnames_m=_GR_SURNAMES_M,
        surnames_f=_GR_SURNAMES_F,
        family_first=False,
        separator=" ",
        usage_location="GR",
        country="Greece",
        cities=("Αθήνα", "Θεσσαλονίκη", "Πάτρα"),
        languages=((_EN_US, 0.6), (None, 0.4)),
        company_suffix="{brand} Hellas Μονοπρόσωπη Α.Ε.",
        salesforce=_SF_CE,
        phone_prefix="+30",
    ),
    Culture(
        key="ja-JP",
        weight=6,
        given_m=_pairs(
            "翔太=shota|大輔=daisuke|健太=kenta|拓也=takuya|直樹=naoki|太郎=taro|誠=makoto|学=manabu|"
            "蓮=ren|大翔=hiroto|悠真=yuma|陽翔=haruto|ケン=ken"
        ),
        given_f=_pairs(
            "陽菜=hina|さくら=sakura|美咲=misaki|結衣=yui|愛=ai|花子=hanako|由美=yumi|恵子=keiko|裕子=yuko|"
            "ゆかり=yukari|あかり=akari|葵=aoi|ナオミ=naomi|エリカ=erika"
        ),
        surnames_m=_JA_SURNAMES,
        surnames_f=_JA_SURNAMES,
        family_first=True,
        separator=" ",
        usage_location="JP",
        country="Japan",
        cities=("東京", "大阪", "名古屋", "福岡", "札幌"),
        languages=(("ja-JP", 0.8), (_EN_US, 0.1), (None, 0.1)),
        company_suffix="{brand}株式会社",
        salesforce=_SF_JA,
        phone_prefix="+81",
    ),
    Culture(
        key="zh-CN",
        weight=6,
        given_m=_pairs(
            "伟=wei|强=qiang|磊=lei|军=jun|洋=yang|勇=yong|杰=jie|涛=tao|明=ming|超=chao|平=ping|刚=gang|浩然=haoran"
        ),
        given_f=_pairs(
            "芳=fang|娜=na|秀英=xiuying|敏=min|静=jing|丽=li|艳=yan|娟=juan|秀兰=xiulan|霞=xia|桂英=guiying|"
            "子涵=zihan|欣怡=xinyi"
        ),
        surnames_m=_ZH_SURNAMES,
        surnames_f=_ZH_SURNAMES,
        family_first=True,
        separator="",
        usage_location="CN",
        country="China",
        cities=("上海", "北京", "深圳", "广州", "成都"),
        languages=(("zh-CN", 0.75), (_EN_US, 0.15), (None, 0.1)),
        company_suffix="{brand}（中国）有限公司",
        salesforce=_SF_ASIA,
        phone_prefix="+86",
    ),
    Culture(
        key="ko-KR",
        weight=3,
        given_m=_pairs(
            "민준=minjun|서준=seojun|도윤=doyun|예준=yejun|시우=siwoo|하준=hajun|지호=jiho|현우=hyunwoo|지훈=jihoon"
        ),
        given_f=_pairs(
            "서연=seoyeon|서윤=seoyun|지우=jiwoo|서현=seohyun|민서=minseo|하은=haeun|하윤=hayun|윤서=yunseo|"
            "지민=jimin|수빈=subin|은지=eunji"
        ),
        surnames_m=_KO_SURNAMES,
        surnames_f=_KO_SURNAMES,
        family_first=True,
        separator="",
        usage_location="KR",
        country="South Korea",
        cities=("서울", "부산", "인천", "판교"),
        languages=((_EN_US, 0.6), (None, 0.4)),
        company_suffix="{brand} Korea 유한회사",
        salesforce=_SF_ASIA,
        phone_prefix="+82",
    ),
    Culture(
        key="ar",
        weight=3,
        given_m=_pairs(
            "محمد=mohammed|أحمد=ahmed|علي=ali|عمر=omar|خالد=khaled|يوسف=youssef|حسن=hassan|إبراهيم=ibrahim|"
            "عبد الله=abdullah|مصطفى=mostafa"
        ),
        given_f=_pairs(
            "فاطمة=fatima|عائشة=aisha|مريم=maryam|نور=nour|ليلى=layla|سارة=sara|هدى=huda|ياسمين=yasmin|"
            "زينب=zainab|رنا=rana"
        ),
        surnames_m=_AR_SURNAMES,
        surnames_f=_AR_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="AE",
        country="United Arab Emirates",
        cities=("دبي", "أبو ظبي", "الشارقة"),
        languages=((_EN_US, 0.7), (None, 0.3)),
        company_suffix="{brand} Middle East FZ-LLC",
        salesforce=_SF_GB,
        phone_prefix="+971",
    ),
    Culture(
        key="he-IL",
        weight=2,
        given_m=_pairs(
            "דוד=david|יוסף=yosef|משה=moshe|אברהם=avraham|יעקב=yaakov|נועם=noam|איתי=itai|אורי=uri|"
            "דניאל=daniel|יונתן=yonatan"
        ),
        given_f=_pairs(
            "שרה=sarah|רחל=rachel|מיכל=michal|נועה=noa|תמר=tamar|יעל=yael|שירה=shira|מאיה=maya|אביגיל=avigail|רוני=roni"
        ),
        surnames_m=_HE_SURNAMES,
        surnames_f=_HE_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="IL",
        country="Israel",
        cities=("תל אביב-יפו", "ירושלים", "חיפה", "הרצליה"),
        languages=((_EN_US, 0.7), (None, 0.3)),
        company_suffix="{brand} Israel Ltd.",
        salesforce=_SF_GB,
        phone_prefix="+972",
    ),
    Culture(
        key="hi-IN",
        weight=3,
        given_m=_pairs(
            "राहुल=rahul|अमित=amit|सुनील=sunil|विकास=vikas|संजय=sanjay|अनिल=anil|राजेश=rajesh|अर्जुन=arjun|"
            "रोहित=rohit|विजय=vijay"
        ),
        given_f=_pairs(
            "प्रिया=priya|पूजा=pooja|नेहा=neha|अंजलि=anjali|सुनीता=sunita|कविता=kavita|दीपिका=deepika|"
            "आरती=aarti|स्नेहा=sneha|मीरा=meera"
        ),
        surnames_m=_HI_SURNAMES,
        surnames_f=_HI_SURNAMES,
        family_first=False,
        separator=" ",
        usage_location="IN",
        country="India",
        cities=("बेंगलुरु", "मुंबई", "नई दिल्ली", "पुणे", "हैदराबाद"),
        languages=((_EN_US, 0.8), (None, 0.2)),
        company_suffix="{brand} India Pvt. Ltd.",
        salesforce=_SF_ASIA,
        phone_prefix="+91",
    ),
    Culture(
        key="en-IN",
        weight=4,
        given_m=_latin("Rahul|Amit|Sunil|Vikas|Sanjay|Anil|Rajesh|Arjun|Rohit|Vijay|Venkata Sai|Karthik"),
        given_f=_latin("Priya|Pooja|Neha|Anjali|Sunita|Kavita|Deepika|Aarti|Sneha|Meera|Lakshmi"),
        surnames_m=_latin(
            "Sharma|Verma|Gupta|Singh|Kumar|Patel|Joshi|Mishra|Yadav|Agarwal|Chauhan|Pandey|Iyer|Nair|Rao|"
            "Reddy|Subramanian|Venkataraman|Chattopadhyay"
        ),
        surnames_f=_latin(
            "Sharma|Verma|Gupta|Kaur|Kumari|Patel|Joshi|Mishra|Yadav|Agarwal|Chauhan|Pandey|Iyer|Nair|Rao|"
            "Reddy|Subramanian|Venkataraman|Chattopadhyay"
        ),
        family_first=False,
        separator=" ",
        usage_location="IN",
        country="India",
        cities=("Bengaluru", "Mumbai", "New Delhi", "Pune", "Hyderabad", "Chennai"),
        languages=((_EN_US, 0.85), (None, 0.15)),
        company_suffix="{brand} India Pvt. Ltd.",
        salesforce=_SF_ASIA,
        phone_prefix="+91",
    ),
)
