"""Per-language templates for synthetic mentions (written for masssim; no external corpus).

Slots: ``{brand}`` is a brand word as a name (or, when the author does not name the brand, a generic reference
such as "you guys"), ``{word}`` is a brand word used as an everyday word (lower case), ``{thing}`` is a noun of
the brand's vertical (a laptop, a can, an appointment).

Blocks of one language:

* ``relevant``: per intent, needles for any vertical.
* ``vertical_relevant``: per vertical, per intent, needles whose words mean something else in another vertical
  ("sick" as praise for an energy drink, as illness at a clinic).
* ``vague``: needles with few cues (the intent comes from the draw, not from the words).
* ``ambiguous``: texts whose ground truth is drawn at random (irreducible error of any classifier).
* ``everyday``: haystack that uses a brand word in an everyday sense; ``everyday_by_word`` adds texts for
  particular words ("windows", "office").
* ``hard``: per vertical, haystack with the vertical's vocabulary and a brand word, but not about the brand.
* ``chatter``: haystack with no brand word (found by hashtags, threads, shared inboxes).
* ``things``: per vertical, nouns of the vertical. ``generic_ref``: how an author refers to the brand without
  naming it. ``code_mix``: (native, English) substitutions used for code-mixing.
"""

from __future__ import annotations

from typing import Any

EN: dict[str, Any] = {
    "things": {
        "software": ["laptop", "update", "licence", "account"],
        "energy_drink": ["can", "flavour", "six-pack", "order"],
        "clinic": ["appointment", "doctor", "test results", "booking"],
    },
    "generic_ref": ["you guys", "your team", "u", "this company"],
    "relevant": {
        "complaint": [
            "{brand} ruined my {thing} again, absolutely furious",
            "worst experience ever with {brand}, my {thing} is a mess",
            "@{brand} three days and still no fix for my {thing}. unacceptable",
            "done with {brand}. charged twice for the {thing} and nobody answers",
        ],
        "support": [
            "hi {brand}, my {thing} stopped working this morning, can someone help?",
            "{brand} support please, cannot log in to manage my {thing}",
            "need help with my {thing} from {brand}, it shows an error",
            "dm'd {brand} about my {thing}, still waiting for a reply",
        ],
        "purchase": [
            "thinking of buying the new {thing} from {brand}, any discount?",
            "where can i order {brand}? want a {thing} today",
            "{brand} how much is the {thing}? ready to buy",
            "shut up and take my money {brand}, the {thing} looks great",
        ],
        "question": [
            "does {brand} work with an older {thing}?",
            "quick question for {brand}: is the {thing} available in my country?",
            "anyone know if {brand} changed the {thing} recently?",
            "{brand} what are your opening hours for the {thing}?",
        ],
        "praise": [
            "love {brand}, the {thing} just works",
            "shoutout to {brand} for sorting my {thing} in five minutes",
            "{brand} never disappoints, great {thing}",
            "honestly {brand} is the best, new {thing} is amazing",
        ],
        "other": [
            "saw the new {brand} ad on tv last night",
            "{brand} is sponsoring the match this weekend",
            "my cousin just started working at {brand}",
            "{brand} posted their results today",
        ],
    },
    "vertical_relevant": {
        "software": {
            "complaint": ["{brand} crashed and killed my {thing}, lost a whole day of work"],
            "praise": ["the new {brand} update is sick ngl", "{brand} {thing} is killer, so fast now"],
            "support": ["blue screen after the {brand} {thing}, how do i roll back?"],
        },
        "energy_drink": {
            "praise": ["{brand} is sick!! new {thing} slaps", "that {brand} {thing} is insane, buying more"],
            "complaint": ["drank a {brand} and felt sick all night, never again"],
            "purchase": ["need a crate of {brand} for the gaming night, which {thing}?"],
        },
        "clinic": {
            "support": [
                "feeling sick since monday, can {brand} give me an {thing} today?",
                "my kid is sick, does {brand} take walk-ins?",
            ],
            "complaint": ["waited two hours at {brand} while sick, nobody told us anything"],
            "purchase": ["want to book a check-up at {brand}, what does the {thing} cost?"],
        },
    },
    "vague": ["{brand}...", "ugh {brand} again", "{brand} 🙄", "well {brand}", "{brand} lol", "so {brand} huh"],
    "ambiguous": [
        "anyone else having trouble with {word} today?",
        "{word} keeps freezing, what do i do",
        "new {word} finally installed, looks nice",
        "the {word} situation here is getting ridiculous",
        "need someone to fix the {word} asap",
    ],
    "everyday": [
        "my {word} need a proper clean before the guests arrive",
        "cannot believe how dusty the {word} got this week",
        "photo of the {word} at sunset, so pretty",
        "sick of hearing about {word} renovations next door",
        "grandma still talks about the {word} in her old house",
    ],
    "everyday_by_word": {
        "windows": [
            "spent the whole saturday cleaning the windows",
            "left the windows open and the rain came in",
            "the bakery has the cutest windows at christmas",
            "feeling sick, sitting by the windows with tea",
        ],
        "office": [
            "back at the office after two weeks off",
            "office party tonight, wish me luck",
            "running for office next year? my uncle is",
            "the office coffee machine is broken again",
        ],
    },
    "hard": {
        "software": [
            "my laptop died so i am working from the {word} today",
            "new update on my phone, the {word} view looks great",
            "crashed on the sofa after a long day at the {word}",
        ],
        "energy_drink": [
            "grabbed a can of something sick at the {word} vending machine",
            "too much caffeine at the {word}, my heart is racing",
            "this flavour of tea at the {word} is insane",
        ],
        "clinic": [
            "feeling sick, left the {word} early to see my doctor",
            "booked an appointment for new {word} in the bedroom",
            "half the {word} is sick with the flu this week",
        ],
    },
    "chatter": [
        "what a game last night",
        "follow for more daily tips",
        "anyone want to grab lunch",
        "click here to win a free phone",
        "traffic is terrible this morning",
        "happy birthday to my best friend",
        "reply STOP to unsubscribe",
        "the weather is finally nice",
    ],
    "code_mix": [],
}

FR: dict[str, Any] = {
    "things": {
        "software": ["ordinateur", "mise à jour", "licence", "compte"],
        "energy_drink": ["canette", "parfum", "pack", "commande"],
        "clinic": ["rendez-vous", "médecin", "résultats", "dossier"],
    },
    "generic_ref": ["vous", "votre service", "la boîte"],
    "relevant": {
        "complaint": [
            "{brand} a encore planté mon {thing}, c'est inadmissible",
            "très déçu par {brand}, mon {thing} est inutilisable",
            "{brand} m'a facturé deux fois le {thing} et personne ne répond",
        ],
        "support": [
            "bonjour {brand}, mon {thing} ne marche plus, vous pouvez m'aider ?",
            "besoin d'aide avec {brand}, impossible d'accéder à mon {thing}",
            "j'attends toujours une réponse de {brand} pour mon {thing}",
        ],
        "purchase": [
            "je voudrais acheter le {thing} de {brand}, c'est combien ?",
            "où commander {brand} ? je veux un {thing} aujourd'hui",
            "{brand} vous faites des promos sur le {thing} ?",
        ],
        "question": [
            "est-ce que {brand} fonctionne avec un vieux {thing} ?",
            "question pour {brand} : le {thing} est disponible en Belgique ?",
            "quelqu'un sait si {brand} a changé le {thing} ?",
        ],
        "praise": [
            "franchement {brand} c'est génial, le {thing} est top",
            "merci {brand}, mon {thing} réglé en cinq minutes",
            "{brand} ne déçoit jamais, super {thing}",
        ],
        "other": [
            "vu la nouvelle pub {brand} hier soir",
            "{brand} sponsorise le match ce week-end",
            "ma cousine vient de commencer chez {brand}",
        ],
    },
    "vertical_relevant": {
        "software": {"praise": ["la dernière {thing} de {brand} est de la balle"]},
        "energy_drink": {"praise": ["{brand} c'est une tuerie, le nouveau {thing} déchire"]},
        "clinic": {"support": ["je suis malade depuis lundi, {brand} a un {thing} aujourd'hui ?"]},
    },
    "vague": ["{brand}...", "bon, {brand}", "{brand} 🙄", "encore {brand}", "{brand} mdr"],
    "ambiguous": [
        "quelqu'un a des soucis avec {word} aujourd'hui ?",
        "{word} bloqué depuis ce matin, je fais quoi",
        "il faut réparer {word} au plus vite",
    ],
    "everyday": [
        "le groupe {word} passe en concert ce soir",
        "l'hôtel {word} près de la gare est complet",
        "j'ai rangé l'{word} de la cuisine ce matin",
        "malade, je reste à la maison, pas envie de parler de {word}",
    ],
    "everyday_by_word": {},
    "hard": {
        "software": ["mon ordinateur est mort, je travaille depuis l'{word}"],
        "energy_drink": ["trop de café à l'{word}, j'ai le cœur qui bat"],
        "clinic": ["malade, j'ai quitté l'{word} pour voir le médecin"],
    },
    "chatter": [
        "quel match hier soir",
        "qui vient déjeuner",
        "il fait enfin beau",
        "cliquez ici pour gagner un téléphone",
        "joyeux anniversaire à ma sœur",
    ],
    "code_mix": [("aide", "help"), ("acheter", "buy"), ("génial", "top"), ("réponse", "feedback")],
}

ID: dict[str, Any] = {
    "things": {
        "software": ["laptop", "update", "lisensi", "akun"],
        "energy_drink": ["kaleng", "rasa", "paket", "pesanan"],
        "clinic": ["janji temu", "dokter", "hasil lab", "antrian"],
    },
    "generic_ref": ["kalian", "admin", "mimin"],
    "relevant": {
        "complaint": [
            "{brand} bikin {thing} saya rusak lagi, kesel banget",
            "kecewa sama {brand}, {thing} saya tidak bisa dipakai",
            "{brand} tagihan {thing} dobel dan tidak ada yang balas",
        ],
        "support": [
            "halo {brand}, tolong bantu, {thing} saya tidak bisa dibuka",
            "min {brand}, saya butuh bantuan untuk {thing}",
            "sudah chat {brand} soal {thing}, belum dibalas",
        ],
        "purchase": [
            "mau beli {thing} dari {brand}, harganya berapa?",
            "di mana bisa pesan {brand}? mau {thing} hari ini",
            "{brand} ada promo untuk {thing} tidak?",
        ],
        "question": [
            "apakah {brand} bisa dipakai dengan {thing} lama?",
            "{brand} buka jam berapa untuk {thing}?",
            "ada yang tahu {brand} ganti {thing}?",
        ],
        "praise": [
            "{brand} mantap, {thing} nya keren",
            "makasih {brand}, {thing} saya beres cepat",
            "suka banget sama {brand}, {thing} terbaik",
        ],
        "other": [
            "lihat iklan baru {brand} semalam",
            "{brand} jadi sponsor pertandingan minggu ini",
            "sepupu saya baru kerja di {brand}",
        ],
    },
    "vertical_relevant": {
        "software": {"praise": ["update {brand} yang baru gila sih, cepat banget"]},
        "energy_drink": {"praise": ["{brand} gila enaknya, {thing} baru juara"]},
        "clinic": {"support": ["lagi sakit dari senin, {brand} ada {thing} hari ini?"]},
    },
    "vague": ["{brand}...", "duh {brand}", "{brand} 🙄", "{brand} lagi", "wkwk {brand}"],
    "ambiguous": [
        "ada yang bermasalah dengan {word} hari ini?",
        "{word} macet terus, gimana ini",
        "harus cepat perbaiki {word}",
    ],
    "everyday": [
        "band {word} main di kafe malam ini",
        "hotel {word} dekat stasiun penuh",
        "lagi sakit, males bahas {word}",
        "foto {word} waktu senja, cantik",
    ],
    "everyday_by_word": {},
    "hard": {
        "software": ["laptop mati, hari ini kerja dari {word}"],
        "energy_drink": ["kebanyakan kopi di {word}, jantung deg-degan"],
        "clinic": ["sakit, pulang cepat dari {word} ke dokter"],
    },
    "chatter": [
        "pertandingan semalam seru banget",
        "siapa mau makan siang",
        "macet parah pagi ini",
        "klik di sini untuk menang hp gratis",
        "selamat ulang tahun sahabatku",
    ],
    "code_mix": [("tolong", "please"), ("bantu", "help"), ("beli", "buy"), ("harganya", "price"), ("keren", "cool")],
}

AR: dict[str, Any] = {
    "things": {
        "software": ["الحاسوب", "التحديث", "الترخيص", "الحساب"],
        "energy_drink": ["العلبة", "النكهة", "العبوة", "الطلب"],
        "clinic": ["الموعد", "الطبيب", "نتائج التحليل", "الحجز"],
    },
    "generic_ref": ["حضرتكم", "خدمة العملاء", "الشركة"],
    "relevant": {
        "complaint": [
            "{brand} أفسد {thing} مرة أخرى، هذا غير مقبول",
            "تجربة سيئة جدا مع {brand}، {thing} لا يعمل",
            "{brand} خصم المبلغ مرتين على {thing} ولا أحد يرد",
        ],
        "support": [
            "مرحبا {brand}، {thing} توقف عن العمل، أحتاج مساعدة",
            "أحتاج مساعدة من {brand} في {thing} من فضلكم",
            "راسلت {brand} بخصوص {thing} ولم يرد أحد",
        ],
        "purchase": [
            "أريد شراء {thing} من {brand}، كم السعر؟",
            "أين أطلب {brand}؟ أريد {thing} اليوم",
            "هل عند {brand} خصم على {thing}؟",
        ],
        "question": [
            "هل يعمل {brand} مع {thing} القديم؟",
            "سؤال إلى {brand}: هل {thing} متوفر في بلدي؟",
            "هل غيّر {brand} {thing} مؤخرا؟",
        ],
        "praise": [
            "{brand} رائع جدا، {thing} ممتاز",
            "شكرا {brand}، تم حل مشكلة {thing} بسرعة",
            "أحب {brand}، أفضل {thing}",
        ],
        "other": [
            "شاهدت إعلان {brand} الجديد أمس",
            "{brand} يرعى المباراة هذا الأسبوع",
            "ابن عمي بدأ العمل في {brand}",
        ],
    },
    "vertical_relevant": {
        "software": {"praise": ["تحديث {brand} الجديد خرافي"]},
        "energy_drink": {"praise": ["{brand} خرافي، {thing} الجديدة نار"]},
        "clinic": {"support": ["أنا مريض منذ الاثنين، هل عند {brand} {thing} اليوم؟"]},
    },
    "vague": ["{brand}...", "يا {brand}", "{brand} 🙄", "{brand} مرة ثانية"],
    "ambiguous": [
        "هل عند أحد مشكلة مع {word} اليوم؟",
        "{word} معلق من الصباح، ماذا أفعل",
        "لازم أصلح {word} بسرعة",
    ],
    "everyday": [
        "فرقة {word} تغني الليلة",
        "فندق {word} قرب المحطة ممتلئ",
        "أنا مريض ولا أريد الكلام عن {word}",
        "صورة {word} وقت الغروب، جميلة",
    ],
    "everyday_by_word": {},
    "hard": {
        "software": ["الحاسوب تعطل، أعمل اليوم من {word}"],
        "energy_drink": ["قهوة كثيرة في {word}، قلبي يدق بسرعة"],
        "clinic": ["مريض، خرجت من {word} مبكرا إلى الطبيب"],
    },
    "chatter": [
        "مباراة رائعة أمس",
        "الجو حار اليوم",
        "الزحمة شديدة هذا الصباح",
        "اضغط هنا لتربح هاتفا مجانا",
        "عيد ميلاد سعيد يا صديقي",
    ],
    "code_mix": [("مساعدة", "help"), ("شراء", "buy"), ("السعر", "price"), ("رائع", "super")],
}

TE: dict[str, Any] = {
    "things": {
        "software": ["ల్యాప్‌టాప్", "అప్‌డేట్", "లైసెన్స్", "ఖాతా"],
        "energy_drink": ["డబ్బా", "రుచి", "ప్యాక్", "ఆర్డర్"],
        "clinic": ["అపాయింట్‌మెంట్", "డాక్టర్", "రిపోర్ట్", "బుకింగ్"],
    },
    "generic_ref": ["మీరు", "మీ టీమ్", "కంపెనీ"],
    "relevant": {
        "complaint": [
            "{brand} వల్ల నా {thing} మళ్ళీ పాడైంది, చాలా కోపంగా ఉంది",
            "{brand} తో చాలా చెడ్డ అనుభవం, {thing} పని చేయడం లేదు",
            "{brand} రెండుసార్లు డబ్బులు తీసుకుంది, ఎవరూ జవాబు ఇవ్వడం లేదు",
        ],
        "support": [
            "నమస్తే {brand}, నా {thing} పని చేయడం లేదు, సహాయం చేయండి",
            "{brand} నుండి {thing} కోసం సహాయం కావాలి",
            "{thing} గురించి {brand} కి మెసేజ్ చేశాను, ఇంకా జవాబు లేదు",
        ],
        "purchase": [
            "{brand} నుండి {thing} కొనాలనుకుంటున్నాను, ధర ఎంత?",
            "{brand} ఎక్కడ ఆర్డర్ చేయాలి? ఈ రోజే {thing} కావాలి",
            "{brand} {thing} మీద డిస్కౌంట్ ఉందా?",
        ],
        "question": [
            "{brand} పాత {thing} తో పని చేస్తుందా?",
            "{brand} {thing} మా ఊరిలో దొరుకుతుందా?",
            "{brand} {thing} మార్చిందా ఎవరికైనా తెలుసా?",
        ],
        "praise": [
            "{brand} చాలా బాగుంది, {thing} అద్భుతం",
            "ధన్యవాదాలు {brand}, నా {thing} వెంటనే సరిచేశారు",
            "{brand} అంటే నాకు చాలా ఇష్టం",
        ],
        "other": [
            "నిన్న రాత్రి {brand} కొత్త ప్రకటన చూశాను",
            "ఈ వారం మ్యాచ్ కి {brand} స్పాన్సర్",
            "మా బంధువు {brand} లో ఉద్యోగంలో చేరాడు",
        ],
    },
    "vertical_relevant": {
        "software": {"praise": ["{brand} కొత్త అప్‌డేట్ కేక"]},
        "energy_drink": {"praise": ["{brand} కేక, కొత్త {thing} సూపర్"]},
        "clinic": {"support": ["సోమవారం నుండి ఒంట్లో బాగోలేదు, {brand} లో ఈ రోజు {thing} ఉందా?"]},
    },
    "vague": ["{brand}...", "అయ్యో {brand}", "{brand} 🙄", "మళ్ళీ {brand}"],
    "ambiguous": [
        "ఈ రోజు {word} తో ఎవరికైనా సమస్య ఉందా?",
        "{word} ఉదయం నుండి ఆగిపోయింది, ఏం చేయాలి",
        "{word} త్వరగా బాగు చేయించాలి",
    ],
    "everyday": [
        "ఇంటి {word} శుభ్రం చేశాను",
        "స్టేషన్ దగ్గర {word} హోటల్ నిండిపోయింది",
        "ఒంట్లో బాగోలేదు, {word} గురించి మాట్లాడాలని లేదు",
        "సాయంత్రం {word} ఫోటో, చాలా అందంగా ఉంది",
    ],
    "everyday_by_word": {},
    "hard": {
        "software": ["ల్యాప్‌టాప్ ఆగిపోయింది, ఈ రోజు {word} నుండి పని"],
        "energy_drink": ["{word} లో ఎక్కువ కాఫీ తాగాను, గుండె వేగంగా కొట్టుకుంటోంది"],
        "clinic": ["ఒంట్లో బాగోలేదు, {word} నుండి డాక్టర్ దగ్గరికి వెళ్ళాను"],
    },
    "chatter": [
        "నిన్నటి మ్యాచ్ అదిరింది",
        "ఈ రోజు వర్షం పడుతోంది",
        "ఉదయం ట్రాఫిక్ చాలా ఎక్కువ",
        "ఉచిత ఫోన్ గెలవడానికి ఇక్కడ క్లిక్ చేయండి",
        "నా స్నేహితుడికి పుట్టినరోజు శుభాకాంక్షలు",
    ],
    "code_mix": [("సహాయం", "help"), ("ధర", "price"), ("చాలా", "very"), ("కొనాలనుకుంటున్నాను", "buy cheyyali")],
}

TEMPLATES: dict[str, dict[str, Any]] = {"en": EN, "fr": FR, "id": ID, "ar": AR, "te": TE}
