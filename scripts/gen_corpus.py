#!/usr/bin/env python3
"""Generates data/tiny-corpus/: English-like text with structure a small model can learn.

Nothing is copied from anywhere: every line comes from a small probabilistic grammar, so the
corpus is free of rights and the same seed always gives the same bytes. The text mixes
  * scenes: a few facts about where things are, then questions answered from those facts,
  * sentences about people, animals, objects, places and actions,
  * arithmetic facts in words and in digits ("seven plus two is nine.", "7 + 2 = 9"),
  * dialog lines between named speakers,
  * lists and ordered sequences (days, months, counting).
The held-out split uses another seed and the same distribution.

Usage: scripts/gen_corpus.py [--out data/tiny-corpus] [--train-bytes 400000] [--valid-bytes 40000]
"""

import argparse
import pathlib
import random

NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
           "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
PEOPLE = ("anna ben clara david emma felix grace henry iris jonas kate leo mia noah olga "
          "paul rosa sam tara victor").split()
ANIMALS = "cat dog fox owl horse goat duck rabbit mouse bear".split()
OBJECTS = "cup book lamp key box ball hat coin map bell basket letter".split()
FOODS = "apples bread milk eggs cheese rice beans honey pears soup".split()
PLACES = ("table shelf chair bed window door desk floor bench garden kitchen river hill "
          "market bridge forest").split()
COLORS = "red green blue yellow white black brown grey".split()
SIZES = "small big old new tall short".split()
PREPOSITIONS = "on under near behind beside".split()
TIMES = ("in the morning|at noon|in the evening|at night|after lunch|before dinner|"
         "on monday|on friday").split("|")
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = ("january february march april may june july august september october november "
          "december").split()
# (verb in past tense, what it takes) so that sentences stay sensible.
VERBS_OBJECT = ("found|carried|painted|dropped|cleaned|lost|opened|bought|sold|hid").split("|")
VERBS_PLACE = "walked to|ran to|sat near|waited at|slept by|looked at".split("|")
VERBS_ANIMAL = "fed|chased|watched|heard|found|helped".split("|")
ANIMAL_ACTIONS = "slept|ran|jumped|sang|hid|ate|played".split("|")


def article(word):
  return "an" if word[0] in "aeiou" else "a"


def noun_phrase(rng, nouns, definite=None):
  """'the small red cup', 'a green box', ... with optional size and colour."""
  words = []
  if rng.random() < 0.35:
    words.append(rng.choice(SIZES))
  if rng.random() < 0.5:
    words.append(rng.choice(COLORS))
  words.append(rng.choice(nouns))
  if definite is None:
    definite = rng.random() < 0.6
  det = "the" if definite else article(words[0])
  return det + " " + " ".join(words)


def simple_sentence(rng):
  who = rng.choice(PEOPLE)
  kind = rng.randrange(5)
  if kind == 0:
    text = f"{who} {rng.choice(VERBS_OBJECT)} {noun_phrase(rng, OBJECTS)}"
  elif kind == 1:
    text = f"{who} {rng.choice(VERBS_PLACE)} the {rng.choice(PLACES)}"
  elif kind == 2:
    text = f"{who} {rng.choice(VERBS_ANIMAL)} {noun_phrase(rng, ANIMALS)}"
  elif kind == 3:
    text = f"{noun_phrase(rng, ANIMALS, True)} {rng.choice(ANIMAL_ACTIONS)}"
    text += f" {rng.choice(PREPOSITIONS)} the {rng.choice(PLACES)}"
  else:
    count = rng.randrange(2, 13)
    text = f"{who} bought {NUMBERS[count]} {rng.choice(FOODS)} at the market"
  if rng.random() < 0.4:
    text += " " + rng.choice(TIMES)
  return text + "."


def arithmetic_fact(rng):
  op = rng.randrange(3)
  if op == 0:
    a, b = rng.randrange(0, 11), rng.randrange(0, 11)
    c, word, sign = a + b, "plus", "+"
  elif op == 1:
    a = rng.randrange(0, 21)
    b = rng.randrange(0, a + 1)
    c, word, sign = a - b, "minus", "-"
  else:
    a, b = rng.randrange(0, 6), rng.randrange(0, 5)
    c, word, sign = a * b, "times", "*"
  if c > 20:
    return f"{a} {sign} {b} = {c}"
  if rng.random() < 0.3:
    return f"{a} {sign} {b} = {c}"
  return f"{NUMBERS[a]} {word} {NUMBERS[b]} is {NUMBERS[c]}."


def scene(rng):
  """A few facts, then questions whose answers follow from them."""
  things = rng.sample(OBJECTS, rng.randrange(2, 5))
  where = {t: (rng.choice(PREPOSITIONS), rng.choice(PLACES), rng.choice(COLORS)) for t in things}
  lines = []
  for t in things:
    prep, place, color = where[t]
    lines.append(f"the {color} {t} is {prep} the {place}.")
  asker, answerer = rng.sample(PEOPLE, 2)
  for t in rng.sample(things, len(things)):
    prep, place, color = where[t]
    if rng.random() < 0.5:
      lines.append(f"{asker}: where is the {color} {t}?")
      lines.append(f"{answerer}: the {color} {t} is {prep} the {place}.")
    else:
      lines.append(f"{asker}: what colour is the {t}?")
      lines.append(f"{answerer}: the {t} is {color}.")
  return "\n".join(lines)


def dialog(rng):
  a, b = rng.sample(PEOPLE, 2)
  lines = []
  kind = rng.randrange(3)
  if kind == 0:
    x, y = rng.randrange(0, 11), rng.randrange(0, 11)
    lines.append(f"{a}: what is {NUMBERS[x]} plus {NUMBERS[y]}?")
    lines.append(f"{b}: {NUMBERS[x]} plus {NUMBERS[y]} is {NUMBERS[x + y]}.")
  elif kind == 1:
    day = rng.randrange(7)
    lines.append(f"{a}: what day comes after {DAYS[day]}?")
    lines.append(f"{b}: after {DAYS[day]} comes {DAYS[(day + 1) % 7]}.")
  else:
    food = rng.choice(FOODS)
    n = rng.randrange(1, 10)
    lines.append(f"{a}: do we have any {food}?")
    if rng.random() < 0.5:
      lines.append(f"{b}: yes, we have {NUMBERS[n]} {food} in the kitchen.")
    else:
      lines.append(f"{b}: no, we need to buy {food} at the market.")
  lines.append(f"{a}: {rng.choice(['thank you', 'good', 'i see', 'all right'])}.")
  return "\n".join(lines)


def listing(rng):
  kind = rng.randrange(4)
  if kind == 0:
    items = rng.sample(FOODS, rng.randrange(3, 7))
    return "shopping list: " + ", ".join(items) + "."
  if kind == 1:
    start = rng.randrange(7)
    n = rng.randrange(3, 8)
    return "days: " + ", ".join(DAYS[(start + i) % 7] for i in range(n)) + "."
  if kind == 2:
    start = rng.randrange(12)
    n = rng.randrange(3, 7)
    return "months: " + ", ".join(MONTHS[(start + i) % 12] for i in range(n)) + "."
  start = rng.randrange(0, 12)
  n = rng.randrange(4, 9)
  return "counting: " + ", ".join(NUMBERS[start + i] for i in range(n)) + "."


def story(rng):
  who = rng.choice(PEOPLE)
  animal = rng.choice(ANIMALS)
  place = rng.choice(PLACES)
  thing = rng.choice(OBJECTS)
  return (f"one day {who} walked to the {place} with {article(animal)} {animal}. "
          f"the {animal} found {article(thing)} {thing} {rng.choice(PREPOSITIONS)} the "
          f"{rng.choice(PLACES)}. {who} took the {thing} home {rng.choice(TIMES)}.")


def paragraph(rng):
  kind = rng.choices(["sentences", "arithmetic", "scene", "dialog", "list", "story"],
                     weights=[4, 3, 3, 2, 2, 2])[0]
  if kind == "sentences":
    return " ".join(simple_sentence(rng) for _ in range(rng.randrange(2, 6)))
  if kind == "arithmetic":
    return "\n".join(arithmetic_fact(rng) for _ in range(rng.randrange(3, 8)))
  if kind == "scene":
    return scene(rng)
  if kind == "dialog":
    return dialog(rng)
  if kind == "list":
    return listing(rng)
  return story(rng)


def generate(seed, size):
  rng = random.Random(seed)
  parts, total = [], 0
  while total < size:
    p = paragraph(rng) + "\n\n"
    parts.append(p)
    total += len(p)
  return "".join(parts)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="data/tiny-corpus")
  parser.add_argument("--train-bytes", type=int, default=400_000)
  parser.add_argument("--valid-bytes", type=int, default=40_000)
  parser.add_argument("--train-seed", type=int, default=1)
  parser.add_argument("--valid-seed", type=int, default=2)
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "train.txt").write_text(generate(args.train_seed, args.train_bytes), encoding="ascii")
  (out / "valid.txt").write_text(generate(args.valid_seed, args.valid_bytes), encoding="ascii")


if __name__ == "__main__":
  main()
