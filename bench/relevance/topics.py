"""What the relevance corpus says: one topic per file, plain spoken English, each file in its own
espeak-ng voice and speed, some video and some audio. The queries (queries.py) point at these
sentences by file key and sentence index, so editing a sentence here changes the corpus hash and
may invalidate a query: tests/unit/test_relevance_corpus.py checks the queries still hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    key: str
    container: str  # "mp4" (H.264 + AAC video), "m4a" (AAC audio) or "wav" (PCM audio)
    voice: str  # espeak-ng voice[+variant]
    speed: int  # espeak-ng words per minute
    sentences: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "tsunamis",
        "mp4",
        "en-us+f3",
        150,
        (
            "A tsunami is a series of huge ocean waves caused by an earthquake under the sea floor.",
            "In deep water the waves travel as fast as a jet plane, but they are barely noticeable.",
            "As they reach shallow water near the coast they slow down and grow much taller.",
            "If the sea suddenly pulls back from the beach, people should run to higher ground at once.",
            "Warning buoys in the Pacific measure pressure changes and send alerts to coastal towns.",
        ),
    ),
    Topic(
        "ibuprofen",
        "wav",
        "en-gb+m4",
        140,
        (
            "Ibuprofen is a common painkiller that also reduces fever and swelling.",
            "The usual adult dose is two hundred to four hundred milligrams every four to six hours.",
            "Do not take more than twelve hundred milligrams in one day without asking a doctor.",
            "Always swallow the tablets with food or milk to protect your stomach.",
            "People with asthma or kidney problems should check with a pharmacist first.",
        ),
    ),
    Topic(
        "sourdough",
        "mp4",
        "en-gb-scotland",
        135,
        (
            "Sourdough bread rises without any packet yeast, using a starter of flour and water instead.",
            "Feed the starter every day until it bubbles and smells pleasantly sour.",
            "Mix the dough, then fold it gently every half hour for the first two hours.",
            "Leave it to prove overnight in the fridge so the flavour can develop slowly.",
            "Bake it in a very hot cast iron pot with the lid on for the first twenty minutes.",
        ),
    ),
    Topic(
        "chess",
        "m4a",
        "en+klatt",
        160,
        (
            "Most chess openings fight for control of the four squares in the centre of the board.",
            "The Italian game starts with the king's pawn and brings the bishop out quickly.",
            "Against that, the Sicilian defence answers with the queen's bishop pawn.",
            "Beginners should castle early to keep their king safe behind a wall of pawns.",
            "Try not to move the same piece twice before every piece has left its starting square.",
        ),
    ),
    Topic(
        "bicycle",
        "mp4",
        "en-us-nyc",
        165,
        (
            "To fix a flat tire, first take the wheel off the bike and let out any remaining air.",
            "Use two plastic levers to pry one side of the tire away from the rim.",
            "Pull out the inner tube and pump it up a little to find the hole.",
            "Sand the area around the puncture, spread the glue, and press the patch on firmly.",
            "Before you put everything back, run your fingers inside the tire to find any sharp glass.",
            "Finally, inflate it to the pressure printed on the side of the tire.",
        ),
    ),
    Topic(
        "honeybees",
        "wav",
        "en-gb-x-rp+f2",
        145,
        (
            "A honeybee colony has one queen, thousands of female workers, and a few hundred male drones.",
            "Workers perform a waggle dance to tell their sisters where the best flowers are.",
            "The angle of the dance shows the direction of the food compared to the sun.",
            "Bees turn nectar into honey by fanning it with their wings until most of the water evaporates.",
            "In winter the colony clusters into a tight ball and shivers to stay warm.",
        ),
    ),
    Topic(
        "compost",
        "m4a",
        "en-029",
        130,
        (
            "A good compost heap needs a mix of green kitchen scraps and brown material like dry leaves.",
            "Turn the pile with a fork once a week so air can reach the middle.",
            "Keep it about as damp as a wrung out sponge.",
            "Never add meat, dairy or cooked food, because they attract rats.",
            "After three or four months you will have dark crumbly soil for the garden.",
        ),
    ),
    Topic(
        "marathon",
        "mp4",
        "en-us+m3",
        170,
        (
            "Training for a marathon usually takes about sixteen to twenty weeks.",
            "Most of your running should be slow enough that you could hold a conversation.",
            "Once a week, do a long run and add a mile or two each time.",
            "Cut back your distance in the final three weeks so your legs are fresh on race day.",
            "During the race, drink water at every station and eat an energy gel every forty five minutes.",
        ),
    ),
    Topic(
        "solar",
        "wav",
        "en-gb-x-gbclan",
        150,
        (
            "Solar panels turn sunlight into electricity using thin layers of silicon.",
            "A roof that faces south gets the most light in the northern hemisphere.",
            "An inverter changes the direct current from the panels into alternating current for your home.",
            "On cloudy days the panels still work, but they produce much less power.",
            "Spare energy can be stored in a battery or sold back to the grid.",
        ),
    ),
    Topic(
        "guitar",
        "mp4",
        "en-gb+f4",
        155,
        (
            "Tuning a guitar means adjusting the tension of each string until it plays the right note.",
            "Turning a tuning peg tighter raises the pitch, and loosening it lowers the pitch.",
            "A small electronic tuner that clips onto the headstock makes the job easy.",
            "New strings stretch a lot, so they go out of tune for the first few days.",
        ),
    ),
    Topic(
        "houseplants",
        "m4a",
        "en-gb+f3",
        140,
        (
            "Most houseplants die from too much water rather than too little.",
            "Push a finger into the soil and only water when the top few centimetres feel dry.",
            "Succulents and cacti like bright windows and can go weeks without a drink.",
            "Ferns prefer shade and humid air, so a bathroom suits them well.",
            "Yellow leaves often mean the roots are sitting in soggy soil.",
        ),
    ),
    Topic(
        "mortgage",
        "mp4",
        "en-gb-x-gbcwmd",
        160,
        (
            "A mortgage is a loan used to buy a house, paid back over twenty five years or more.",
            "With a fixed rate, your monthly payment stays the same for the whole deal.",
            "A variable rate moves up and down with the central bank's base rate.",
            "Saving a bigger deposit usually gets you a lower interest rate.",
            "Overpaying a little each month can cut years off the loan.",
        ),
    ),
    Topic(
        "moon",
        "wav",
        "en-us",
        175,
        (
            "The moon does not make its own light; it reflects light from the sun.",
            "As it orbits the earth, we see different amounts of its sunlit half.",
            "A full cycle of phases, from new moon to new moon, takes about twenty nine and a half days.",
            "When the lit part is growing, the moon is said to be waxing.",
            "A lunar eclipse can only happen during a full moon, when the earth's shadow falls across it.",
        ),
    ),
    Topic(
        "burns",
        "m4a",
        "en+klatt2",
        145,
        (
            "For a minor burn, cool the skin under cold running water for at least twenty minutes.",
            "Do not use ice, butter or toothpaste, as they can damage the tissue further.",
            "Remove rings or tight clothing near the area before it starts to swell.",
            "Cover the burn loosely with cling film or a clean plastic bag.",
            "Get medical help if the burn is larger than the palm of the hand or on the face.",
        ),
    ),
)
