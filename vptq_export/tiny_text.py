"""A small built-in English text: training data for the tiny models (`tiny_models`) and the
default calibration text of the quantizer (`quantize`). Nothing is downloaded.

The text is deliberately repetitive (a few sentence patterns reused with different words) so that
a model of a few hundred thousand parameters learns it in seconds and predicts it with peaked
distributions, which is what greedy-token parity tests need.
"""

from __future__ import annotations

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NAMES = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace")
_PLACES = ("the market", "the river", "the library", "the station", "the garden", "the harbour",
           "the old mill")
_THINGS = ("apples", "bread", "a red kite", "three books", "fresh fish", "warm tea", "a small boat")
_WEATHER = ("sunny", "cold and windy", "rainy", "bright and clear", "grey", "warm", "foggy")

_STORY = """\
The quick brown fox jumps over the lazy dog. The lazy dog sleeps in the sun.
Once upon a time there was a small town by the sea. The people of the town were fishermen,
bakers and teachers. Every morning the baker opened his shop at six o'clock, and the smell of
fresh bread filled the street. The children walked to school along the harbour, where the boats
rocked on the water and the gulls cried above the masts.
In the evening the lamps were lit one by one, and the town grew quiet. The sea was calm and dark,
and the lighthouse turned its slow light over the waves.
One, two, three, four, five, six, seven, eight, nine, ten.
A vector is a list of numbers. A codebook is a list of vectors. To compress a matrix, we replace
each small piece of it by the number of the nearest vector in the codebook.
"""


def builtin_text() -> str:
    """The built-in English text (about 4 KB, deterministic)."""
    lines = [_STORY]
    n = len(_DAYS)
    for i in range(3 * n):
        day, name = _DAYS[i % n], _NAMES[(3 * i) % n]
        place, thing = _PLACES[(5 * i + 1) % n], _THINGS[(2 * i + 3) % n]
        weather = _WEATHER[(i + 2) % n]
        lines.append(
            f"On {day} the weather was {weather}. {name} went to {place} and bought {thing}. "
            f"{name} said: \"I like {place} on {day}.\" Then {name} went home.\n")
    return "".join(lines)
