"""The relevance queries and their ground truth: a file of the corpus and, where one sentence is the
answer, that sentence (so its time range in the file); off-corpus queries have no answer.

Types:
- exact: 3-7 words verbatim from one sentence, as a user would type them (lower case, no punctuation);
- paraphrase: the sentence's meaning sharing no content word with it (tests check this);
- topic: what a file is about; the truth is the file, no sentence named (any sentence will do), so
  midpoint accuracy is not scored for them;
- variant: misspellings, numbers in digits for spoken words, British vs American spelling, split or
  joined compounds;
- off_corpus: about nothing in the corpus; the right answer is no hit above the threshold.

Written once as a user would ask, not tuned to any system's results. `split` alternates dev/test
within each type, so fusion weights can be fitted on dev and reported on test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

QueryType = Literal["exact", "paraphrase", "topic", "variant", "off_corpus"]
TYPES: tuple[QueryType, ...] = ("exact", "paraphrase", "topic", "variant", "off_corpus")


@dataclass(frozen=True)
class Query:
    id: str
    type: QueryType
    text: str
    file: str | None  # topic key of the answer; None for off_corpus
    sentence: int | None  # index of the answer sentence in its file; None: the file as a whole
    split: Literal["dev", "test"]


# (text, file, sentence) per type; ids and splits are given in order below.
_EXACT = [
    ("run to higher ground", "tsunamis", 3),
    ("every four to six hours", "ibuprofen", 1),
    ("a starter of flour and water", "sourdough", 0),
    ("answers with the queen's bishop pawn", "chess", 2),
    ("castle early to keep their king safe", "chess", 3),
    ("two plastic levers", "bicycle", 1),
    ("find any sharp glass", "bicycle", 4),
    ("perform a waggle dance", "honeybees", 1),
    ("shivers to stay warm", "honeybees", 4),
    ("as damp as a wrung out sponge", "compost", 2),
    ("because they attract rats", "compost", 3),
    ("you could hold a conversation", "marathon", 1),
    ("eat an energy gel", "marathon", 4),
    ("thin layers of silicon", "solar", 0),
    ("sold back to the grid", "solar", 4),
    ("clips onto the headstock", "guitar", 2),
    ("a bathroom suits them well", "houseplants", 3),
    ("your monthly payment stays the same", "mortgage", 1),
    ("the earth's shadow falls across it", "moon", 4),
    ("cling film or a clean plastic bag", "burns", 3),
]

_PARAPHRASE = [
    ("approaching land the swell loses speed and gains height", "tsunamis", 2),
    ("sensors floating offshore that notify seaside communities of danger", "tsunamis", 4),
    ("upper limit of this medicine in twenty four hours unless a physician agrees", "ibuprofen", 2),
    ("take the pills while eating so your gut is not upset", "ibuprofen", 3),
    ("nourish the culture daily till it is fizzy with a tangy aroma", "sourdough", 1),
    ("cook the loaf in a covered heavy pan in a scorching oven", "sourdough", 4),
    ("avoid shifting one unit repeatedly before developing all the others", "chess", 4),
    ("roughen the rubber and stick an adhesive repair over the leak", "bicycle", 3),
    ("how insects show hive mates the location of good blossoms by moving", "honeybees", 1),
    ("drying sugary plant liquid by flapping till it thickens", "honeybees", 3),
    ("stir the rotting mound regularly to let oxygen into its core", "compost", 1),
    ("jog mostly at an easy pace where chatting is possible", "marathon", 1),
    ("taper mileage near the end so you feel rested for the big event", "marathon", 3),
    ("device converting DC to AC for household use", "solar", 2),
    ("do photovoltaics generate anything under overcast skies", "solar", 3),
    ("twisting a machine head clockwise makes the sound higher", "guitar", 1),
    ("drowning is what usually kills indoor greenery", "houseplants", 0),
    ("a larger down payment earns cheaper borrowing", "mortgage", 3),
    ("why our satellite glows at night though it is not a star", "moon", 0),
    ("how long to hold a scald beneath the tap", "burns", 0),
]

_TOPIC = [
    ("natural disasters at sea", "tsunamis"),
    ("how much anti-inflammatory medication is safe", "ibuprofen"),
    ("baking bread at home", "sourdough"),
    ("board game strategy", "chess"),
    ("cycling maintenance", "bicycle"),
    ("insects that make honey", "honeybees"),
    ("gardening and recycling food waste", "compost"),
    ("long distance running preparation", "marathon"),
    ("renewable energy for the home", "solar"),
    ("setting up a musical instrument", "guitar"),
    ("looking after indoor plants", "houseplants"),
    ("home loans and borrowing", "mortgage"),
    ("astronomy for beginners", "moon"),
    ("first aid for kitchen accidents", "burns"),
]

_VARIANT = [
    ("tsunami warning bouys", "tsunamis", 4),
    ("ibuprofin 400mg dose", "ibuprofen", 1),
    ("no more than 1200 milligrams a day", "ibuprofen", 2),
    ("sour dough rises without yeast", "sourdough", 0),
    ("flavor develops overnight in the fridge", "sourdough", 3),
    ("sicilian defense", "chess", 2),
    ("four squares in the center of the board", "chess", 0),
    ("how to fix a flat tyre", "bicycle", 0),
    ("honey bee colony queen and drones", "honeybees", 0),
    ("compost ready after 3 or 4 months", "compost", 4),
    ("marathon training 16 to 20 weeks", "marathon", 0),
    ("gel every 45 minutes", "marathon", 4),
    ("south-facing roof northern hemisphere", "solar", 1),
    ("water when the top few centimeters are dry", "houseplants", 1),
    ("moon phases cycle 29.5 days", "moon", 2),
    ("cool a burn for 20 mins", "burns", 0),
]

_OFF_CORPUS = [
    "how to train a puppy to sit",
    "symptoms of diabetes in children",
    "fixing a leaking kitchen tap",
    "history of the roman empire",
    "how to replace a car battery",
    "best hiking trails in colorado",
    "python list comprehension syntax",
    "knitting a wool scarf for beginners",
    "tax deadline for self employed workers",
    "how do vaccines work",
    "wedding speech ideas",
    "recipe for chicken curry",
]


def _make(kind: QueryType, rows: list[tuple[str, str | None, int | None]]) -> list[Query]:
    return [
        Query(f"{kind}-{i:02d}", kind, text, file, sentence, "dev" if i % 2 == 0 else "test")
        for i, (text, file, sentence) in enumerate(rows)
    ]


QUERIES: tuple[Query, ...] = tuple(
    _make("exact", list(_EXACT))
    + _make("paraphrase", list(_PARAPHRASE))
    + _make("topic", [(t, f, None) for t, f in _TOPIC])
    + _make("variant", list(_VARIANT))
    + _make("off_corpus", [(t, None, None) for t in _OFF_CORPUS])
)
