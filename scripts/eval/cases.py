"""The text pairs every metric fixture is built from.

Each case is (id, prediction, [references]). Kept apart from the generator so that the Rust tests and the
fixtures agree on one list, and so that a new case is one line here.
"""

CASES = [
    # Plain English.
    ("plain_cat", "the cat sat on the mat", ["the cat is sitting on the mat"]),
    ("plain_fox", "The quick brown fox jumps over the lazy dog", ["The quick brown dog jumps on the log."]),
    ("plain_guide",
     "It is a guide to action which ensures that the military always obeys the commands of the party",
     ["It is a guide to action that ensures that the military will forever heed Party commands"]),
    ("plain_no_overlap", "non matching hypothesis", ["this is a cat"]),
    ("plain_reordered", "mat the on sat cat the", ["the cat sat on the mat"]),
    ("plain_repeated", "the the the the the the the", ["the cat is on the mat"]),
    ("plain_short_hyp", "cat", ["the cat sat on the mat"]),
    ("plain_long_hyp", "the cat that everyone in the old house loved sat quietly on the small red mat by the door",
     ["the cat sat on the mat"]),
    ("plain_stems", "The runners were running quickly towards the finishing lines",
     ["A runner runs quick toward the finish line"]),
    ("plain_synonyms", "The big dog was happy in the large house",
     ["The large hound was glad in the big home"]),
    ("plain_case", "HELLO World, Hello world!", ["hello world hello WORLD"]),
    ("plain_newlines", "The first sentence is here.\nThe second one follows.\nA third closes it.",
     ["The first sentence is here.\nA second one follows it.\nThe third closes."]),
    # Punctuation-heavy.
    ("punct_heavy", "Wait... what?! No -- really; (seriously) [yes] {maybe} <ok> \"quoted\" 'single'",
     ["Wait, what? No, really: seriously, yes, maybe, ok, quoted, single."]),
    ("punct_html", "Tom &amp; Jerry &lt;3 &quot;cheese&quot; &gt; mice", ["Tom & Jerry <3 \"cheese\" > mice"]),
    ("punct_dashes", "state-of-the-art, well-known; 1990-2000 e-mail", ["state of the art, well known: 1990 - 2000 email"]),
    ("punct_only", "?!?!...", ["..."]),
    ("punct_tokenized", "this is already tokenized .", ["this is already tokenized."]),
    ("punct_hyphen_newline", "a long inter-\nnational word", ["a long international word"]),
    # Numbers.
    ("numbers_prices", "The price rose 3.5% to $1,250.75 on 2024-03-01.",
     ["Price rose 3.5 % to $ 1,250.75 on 01/03/2024"]),
    ("numbers_counts", "3 bedrooms, 2 baths, 1,850 sq ft, built 1987", ["3 bed 2 bath 1850 sqft built in 1987"]),
    ("numbers_decimal", "pi is 3.14159 and e is 2.71828", ["pi is about 3.14 and e about 2.718"]),
    ("numbers_only", "1 2 3 4 5 6 7 8 9 10", ["1 2 3 4 5 6 7 8 9 10 11"]),
    # Unicode: accents, CJK, emoji.
    ("unicode_accents", "Le café de la Résidence est très élégant", ["Le cafe de la residence est tres elegant"]),
    ("unicode_accents_same", "Über naïve façades, déjà vu", ["über naïve façades, déjà vu"]),
    ("unicode_cjk", "这是一个很好的公寓，靠近地铁站。", ["这是一套很好的公寓，离地铁站很近。"]),
    ("unicode_japanese", "東京の駅に近い 素晴らしい アパート です", ["東京駅に近い素晴らしいアパートです"]),
    ("unicode_emoji", "Great view 🌅 and a pool 🏊 👍", ["Great view and a pool 👍"]),
    ("unicode_mixed", "Ελληνικά ΣΟΦΙΑΣ and Русский текст with English", ["ελληνικά σοφιας and русский текст in english"]),
    ("unicode_spaces", "non\u00a0breaking\u2003spaces\tand\ttabs", ["non breaking spaces and tabs"]),
    # Empty predictions and empty references.
    ("empty_prediction", "", ["the cat sat on the mat"]),
    ("empty_reference", "the cat sat on the mat", [""]),
    ("empty_both", "", [""]),
    ("whitespace_prediction", "   \n\t ", ["something here"]),
    # Identical pairs.
    ("identical_short", "a b", ["a b"]),
    ("identical_sentence", "The kitchen was renovated in 2021.", ["The kitchen was renovated in 2021."]),
    ("identical_single_word", "yes", ["yes"]),
    # Multiple references.
    ("multi_ref_three",
     "It is a guide to action which ensures that the military always obeys the commands of the party",
     ["It is a guide to action that ensures that the military will forever heed Party commands",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party",
      "It is the practical guide for the army always to heed the directions of the party"]),
    ("multi_ref_second_best", "the house has a garden", ["a flat with no outdoor space", "the house has a big garden"]),
    ("multi_ref_with_empty", "a sunny two bed flat", ["", "a bright two bedroom flat"]),
    ("multi_ref_lengths", "a b c d e", ["a b c", "a b c d e f g", "a b c d e f"]),
    # Long texts.
    ("long_paragraph",
     "The committee met on Tuesday to review the budget for the coming year. After a long discussion, the members "
     "agreed to increase spending on public transport by ten percent, while reducing the allocation for road repairs. "
     "Several members expressed concern that the cuts would affect rural areas more than the city centre, and asked "
     "for a detailed report before the next meeting. The chair promised that the report would be ready within two "
     "weeks and that residents would be consulted.",
     ["On Tuesday the committee reviewed next year's budget. Following lengthy debate, members voted to raise public "
      "transport spending by 10 percent and to cut road repair funds. Some members worried the cuts would hit rural "
      "areas harder than the city centre and requested a full report ahead of the next meeting. The chair said the "
      "report would be ready in two weeks and residents would be consulted."]),
    ("long_repeated", " ".join(["alpha beta gamma delta"] * 30), [" ".join(["alpha gamma beta delta"] * 30)]),
    # Real-estate-style property descriptions.
    ("estate_flat",
     "Bright two-bedroom flat on the third floor with a south-facing balcony, fitted kitchen and parking space.",
     ["A bright 2 bedroom apartment on the 3rd floor, with south facing balcony, a fitted kitchen and a parking spot."]),
    ("estate_house",
     "Charming detached house with four bedrooms, two bathrooms, a large garden and a double garage, close to "
     "schools and the train station.",
     ["Detached family home offering 4 bedrooms and 2 bathrooms, large landscaped garden, double garage; walking "
      "distance to schools and station."]),
    ("estate_studio", "Compact studio near the university, ideal for students. Bills included.",
     ["Small studio apartment close to campus - perfect for a student, all bills included!",
      "Studio flat near the university; bills are included."]),
    ("estate_luxury",
     "Stunning penthouse with panoramic sea views, 180 m² of living space, private rooftop terrace & pool.",
     ["Penthouse with breathtaking panoramic views of the sea: 180 m2 living area, private roof terrace and "
      "swimming pool."]),
    ("estate_cottage", "Renovated stone cottage in a quiet village, with exposed beams and a wood-burning stove.",
     ["Quiet village setting for this renovated stone cottage featuring exposed beams and a wood burner."]),
    ("estate_rental", "Unfurnished 3-bed semi, available from 1st June, £1,450 pcm, no pets.",
     ["3 bedroom semi-detached, unfurnished, available 1 June. Rent £1450 per month. Sorry, no pets."]),
    ("estate_multiline",
     "Ground floor: open-plan living room and kitchen.\nFirst floor: three bedrooms and a bathroom.\n\nGarden to the rear.",
     ["Ground floor - open plan kitchen and living area.\nFirst floor - 3 bedrooms, family bathroom.\nRear garden."]),
]

# Words whose nltk Porter stems the stemmer tests compare against, beyond every word of the cases above and a
# sample of WordNet's lemmas: the examples of Porter's paper and the forms that NLTK's extensions special-case.
EXTRA_STEM_WORDS = """
caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping tanned
falling hissing fizzed failing filing happy sky relational conditional rational valenci hesitanci digitizer
conformabli radicalli differentli vileli analogousli vietnamization predication operator feudalism decisiveness
hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical
hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible irritant replacement
adjustment dependent adoption homologou communism activate angulariti homologous effective bowdlerize probate rate
cease controll roll skies dying lying tying news innings inning outings outing cannings canning howe proceed exceed
succeed dies lies ties spies died cried tied fully generously logically apology archaeology analogies syzygy toy
enjoy enjoyment spy fly try tried flies yyyy ayy y by is as us be at on it generalizations oscillators
oscillates oscillating abilities possibly hopefully dangerously sensational emotional traditional plurality
dictionaries recalled realizing actualized fascinatingly gently easily ides bias gas atlas abyss mess less crisis
""".split()
