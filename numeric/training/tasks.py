"""Long-term dependency tasks, generated from a seed (no downloads).

Each task draws a batch of sequences x (B, T, m) and the answer due at the last
step: a class (``cuisine``, ``latch``) or a number (``adding``).  ``lag`` is the
distance the answer must be carried.

- ``cuisine``: the lecture's Dhaval and Bhavin.  A person eats a food ("Dhaval
  eats samosa"), ``lag`` filler words follow, then the question; the answer is
  the food's cuisine.  Person, food and fillers are drawn independently, so only
  the food, read ``lag`` + 1 steps before the question, tells the answer.
- ``adding``: Hochreiter & Schmidhuber (1997), as Le, Jaitly & Hinton (2015) set
  it: ``lag`` steps of (value ~ U(0, 1), marker); one marker in each half; the
  answer is the sum of the two marked values.  Predicting the mean scores an MSE
  of Var(u₁ + u₂) = 1/6 ≈ 0.167.
- ``latch``: Bengio, Simard & Frasconi (1994): the sign of the first input,
  ±1, then ``lag`` steps of noise N(0, 0.2²); the answer is the sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derive.errors import InvalidValue

PEOPLE = ("Dhaval", "Bhavin", "Anna", "Marco", "Yuki", "Lena", "Omar", "Sofia")
FOODS = {"samosa": "Indian", "curry": "Indian", "pasta": "Italian", "pizza": "Italian",
         "sushi": "Japanese", "ramen": "Japanese", "tacos": "Mexican", "burrito": "Mexican",
         "croissant": "French", "paella": "Spanish"}
FILLERS = ("and", "then", "he", "she", "walks", "to", "work", "every", "day", "the", "city", "is")
VOCABULARY = (*PEOPLE, "eats", *FOODS, *FILLERS, "cuisine?")
CUISINES = tuple(dict.fromkeys(FOODS.values()))
#: Noise of the latch's steps after the first.
LATCH_NOISE = 0.2


@dataclass(frozen=True)
class Task:
    """What a task is: its input size, and its answer (``classes`` > 0: a class, else a number)."""

    name: str
    input_size: int
    classes: int
    labels: tuple[str, ...]

    @property
    def regression(self) -> bool:
        return self.classes == 0


TASKS = {
    "cuisine": Task("cuisine", len(VOCABULARY), len(CUISINES), CUISINES),
    "adding": Task("adding", 2, 0, ()),
    "latch": Task("latch", 1, 2, ("negative", "positive")),
}


def task(name: str) -> Task:
    if name not in TASKS:
        raise InvalidValue("task", f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return TASKS[name]


def steps(name: str, lag: int) -> int:
    """The sequence length T for ``lag``: cuisine reads person, 'eats', food, the fillers, the question."""
    return {"cuisine": lag + 4, "adding": lag, "latch": lag + 1}[task(name).name]


def check_lag(name: str, lag: int) -> None:
    low = 2 if name == "adding" else 1
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < low:
        raise InvalidValue("lag", f"must be a whole number >= {low} for {name}, got {lag!r}")


def draw(name: str, lag: int, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x (batch, T, m), answer (batch,)): int classes, or floats for ``adding``."""
    check_lag(name, lag)
    return {"cuisine": _cuisine, "adding": _adding, "latch": _latch}[task(name).name](lag, batch, rng)


def chance(name: str) -> float:
    """The score of an answer that ignores the input: the most frequent class's share (cuisine: 0.2, from
    the foods' cuisines .2/.2/.2/.2/.1/.1), or the MSE of predicting the mean (adding: Var(u₁ + u₂) = 1/6).

    >>> chance("cuisine"), chance("latch"), round(chance("adding"), 4)
    (0.2, 0.5, 0.1667)
    """
    if task(name).name == "cuisine":
        return max(list(FOODS.values()).count(c) for c in CUISINES) / len(FOODS)
    return 0.5 if name == "latch" else 1 / 6


#: The steps ``key_steps`` marks, as a person says them.
KEY_STEPS = {"cuisine": "the food word", "adding": "the two marked values", "latch": "the bit"}


def key_steps(name: str, x: np.ndarray) -> np.ndarray:
    """(B, T) bool: the steps each answer is read from (cuisine: the food; adding: the two marked
    values; latch: the bit)."""
    key = np.zeros(x.shape[:2], dtype=bool)
    if task(name).name == "adding":
        return x[:, :, 1] == 1.0
    key[:, 2 if name == "cuisine" else 0] = True
    return key


def roles(name: str, lag: int) -> tuple[str, ...]:
    """What each step t = 1..T holds, for a person reading a sensitivity profile."""
    if task(name).name == "cuisine":
        return ("person", "eats", "food", *["filler"] * lag, "cuisine?")
    if name == "latch":
        return ("bit", *["noise"] * lag)
    return tuple(["value"] * lag)


def _one_hot(tokens: np.ndarray) -> np.ndarray:
    return np.eye(len(VOCABULARY))[tokens]


def _cuisine(lag: int, batch: int, rng: np.random.Generator):
    index = {w: i for i, w in enumerate(VOCABULARY)}
    foods = list(FOODS)
    person = rng.integers(len(PEOPLE), size=batch)
    food = rng.integers(len(foods), size=batch)
    filler = rng.integers(len(FILLERS), size=(batch, lag))
    tokens = np.empty((batch, lag + 4), dtype=int)
    tokens[:, 0] = [index[PEOPLE[p]] for p in person]
    tokens[:, 1] = index["eats"]
    tokens[:, 2] = [index[foods[f]] for f in food]
    tokens[:, 3:-1] = np.array([index[w] for w in FILLERS])[filler]
    tokens[:, -1] = index["cuisine?"]
    answer = np.array([CUISINES.index(FOODS[foods[f]]) for f in food])
    return _one_hot(tokens), answer


def _adding(lag: int, batch: int, rng: np.random.Generator):
    x = np.zeros((batch, lag, 2))
    x[:, :, 0] = rng.uniform(0, 1, (batch, lag))
    half = lag // 2
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, lag, size=batch)
    rows = np.arange(batch)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    return x, x[rows, first, 0] + x[rows, second, 0]


def _latch(lag: int, batch: int, rng: np.random.Generator):
    bit = rng.integers(2, size=batch)
    x = rng.normal(0, LATCH_NOISE, (batch, lag + 1, 1))
    x[:, 0, 0] = 2.0 * bit - 1.0
    return x, bit


def describe(name: str, x: np.ndarray, row: int = 0) -> str:
    """One sequence as a person reads it (cuisine: the words)."""
    if name == "cuisine":
        return " ".join(VOCABULARY[i] for i in np.argmax(x[row], axis=-1))
    return np.array2string(x[row].T, precision=2, threshold=20)
