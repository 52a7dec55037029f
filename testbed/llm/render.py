"""Text renderings of the tasks' own examples: a question and its answer string per example, and answers parsed back
into the token predictions the small models' scoring reads (metrics.outcomes), so that a language model is scored
on the same examples, by the same code, beside the same baselines.

Two styles: `symbolic` (the given states as rows of 0/1, the rule as a table, tokens as the task names them) and
`natural` (the same instance told in words, in the spirit of P1 v3's natural-language proxy: lamps in a ring, cards,
a cloakroom). Both ask for the answer inside <answer></answer> in the same format, so one parser reads either.

An answer is a list of cells, one per scored position of the example, in position order. `chars` answers (cellular
automata) are written as rows of 0/1 and read character by character, whitespace ignored; `words` answers (group
words, facts, MQAR) are the tokens' names separated by spaces (commas too are read as separators).
"""

from __future__ import annotations

import re

import numpy as np

from generators.core import ConfigError

STYLES = ("symbolic", "natural")
FORMAT_LINE = "Write only the answer inside <answer></answer>, in the format asked."
_RENDERINGS: dict[str, type] = {}


def renders(*names: str):
    """Register a rendering class for generators of these names."""
    def wrap(cls):
        for name in names:
            _RENDERINGS[name] = cls
        return cls
    return wrap


def renderable() -> tuple[str, ...]:
    """The generators that have a text rendering."""
    return tuple(sorted(_RENDERINGS))


def rendering(generator, style: str = "symbolic") -> Rendering:
    """The text rendering of a generator's examples in `style`; ConfigError for a task without one."""
    if style not in STYLES:
        raise ConfigError(f"unknown style {style!r}; valid: {', '.join(STYLES)}")
    cls = _RENDERINGS.get(generator.name)
    if cls is None:
        raise ConfigError(f"task {generator.name!r} has no text rendering; tasks with one: "
                          f"{', '.join(renderable())}")
    return cls(generator, style)


def cells(text: str | None, answer_format: str) -> list[str] | None:
    """An answer string as its cells (None stays None: no answer given)."""
    if text is None:
        return None
    if answer_format == "chars":
        return re.findall(r"[^\s,]", text)
    return re.findall(r"[^\s,]+", text)


def _names(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class Rendering:
    """Question and answer strings of a task's examples; answers back to token predictions. Subclasses write
    `question`; the answer is the target tokens at the scored positions unless a subclass says otherwise."""

    answer_format = "words"

    def __init__(self, generator, style: str):
        self.gen, self.style = generator, style
        self.vocab = generator.layout().vocab
        self._ids = {name: i for i, name in enumerate(self.vocab)}

    def question(self, examples: dict, i: int) -> str:
        raise NotImplementedError

    def answer(self, examples: dict, i: int) -> str:
        return self.words(examples["targets"][i][examples["loss_mask"][i]])

    def predictions(self, answers: list[str | None], examples: dict) -> np.ndarray:
        """Predicted tokens (n, L) of parsed answers: an answer with as many cells as the example scores fills
        them (a cell that names no token counts as wrong); any other answer, or none, gets every cell wrong."""
        pred = np.asarray(examples["inputs"]).copy()
        mask = np.asarray(examples["loss_mask"])
        for i, text in enumerate(answers):
            got, want = cells(text, self.answer_format), int(mask[i].sum())
            pred[i, mask[i]] = [self._ids.get(c, -1) for c in got] if got is not None and len(got) == want else -1
        return pred

    def words(self, tokens) -> str:
        return " ".join(self.vocab[t] for t in tokens)


# --- cellular automata ------------------------------------------------------------------------------------------

_LAMP = ("off", "on")


@renders("ca")
class CellularAutomataText(Rendering):
    """Orbits as rows of 0/1 (symbolic) or lamps in a ring (natural); the rule, where given, as its table."""

    answer_format = "chars"

    def answer(self, examples: dict, i: int) -> str:
        w, mask = self.gen.config.width, examples["loss_mask"][i]
        bits = "".join(self.vocab[t] for t in examples["targets"][i][mask])
        c = self.gen.config
        rows = [bits[j:j + w] for j in range(0, len(bits) - (c.table_size if c.task == "O-SR" else 0), w)]
        return "\n".join(rows + ([bits[-c.table_size:]] if c.task == "O-SR" else []))

    def question(self, examples: dict, i: int) -> str:
        given, tables = self.gen.given({"inputs": examples["inputs"][i:i + 1]})
        k = int(examples["k"][i])
        table = None if tables is None else tables[0]
        text = self._natural if self.style == "natural" else self._symbolic
        return text(given[0], table, k)

    def _ask(self, k: int) -> tuple[str, str]:
        """(what is asked, its format), symbolic wording."""
        c = self.gen.config
        if c.task in ("O-O", "RO-O"):
            return (f"What are the next {c.m} states after the last one shown?",
                    f"Give the {c.m} states, oldest first, one per line, each as {c.width} digits 0/1.")
        ahead = "the next state" if k == 1 else f"the state {k} steps after the last one shown"
        if c.task == "O-SR":
            return (f"What is {ahead}, and what is the rule?",
                    f"Give two lines: the state as {c.width} digits 0/1, then the rule as its {c.table_size} "
                    f"outputs for the neighbourhoods {_neighbourhood(0, c.radius)} up to "
                    f"{_neighbourhood(c.table_size - 1, c.radius)} in counting order.")
        return f"What is {ahead}?", f"Give the state as one line of {c.width} digits 0/1."

    def _symbolic(self, given: np.ndarray, table, k: int) -> str:
        c = self.gen.config
        lines = [f"A one-dimensional cellular automaton: a ring of {c.width} cells (the last cell neighbours the "
                 f"first), each 0 or 1. At every step all cells update at once: a cell's new value is the rule's "
                 f"output for its neighbourhood, the {2 * c.radius + 1} cells centred on it read left to right "
                 f"(radius {c.radius})."]
        if table is not None:
            lines += ["Rule (neighbourhood -> new value):"]
            lines += [f"{_neighbourhood(v, c.radius)} -> {table[v]}" for v in range(c.table_size - 1, -1, -1)]
        else:
            lines += ["The rule is not given: infer it from the states."]
        lines += ["States, one per line, oldest first:"] + ["".join(map(str, row)) for row in given]
        ask, fmt = self._ask(k)
        return "\n".join(lines + [ask, fmt, FORMAT_LINE])

    def _natural(self, given: np.ndarray, table, k: int) -> str:
        c = self.gen.config
        side = "the lamp just before it and the lamp just after it" if c.radius == 1 else \
            f"the {c.radius} lamps before it and the {c.radius} lamps after it"
        lines = [f"{c.width} lamps stand in a circle, numbered 1 to {c.width}; lamp {c.width} stands next to lamp 1. "
                 f"Each lamp is on or off. Once a minute every lamp switches at the same moment, following a fixed "
                 f"rule that looks at what the lamp itself, {side} showed just before."]
        span = f"lamp i-{c.radius} to lamp i+{c.radius}" if c.radius > 1 else "lamp i-1, lamp i and lamp i+1"
        if table is not None:
            lines += [f"The rule, for the lamps from {span} in that order:"]
            lines += [f"- {', '.join(_LAMP[int(b)] for b in _neighbourhood(v, c.radius))}: lamp i turns "
                      f"{_LAMP[int(table[v])]}." for v in range(c.table_size - 1, -1, -1)]
        else:
            lines += ["Nobody tells you the rule: work it out from what you see."]
        lines += ["You looked once a minute, oldest look first:"]
        for j, row in enumerate(given):
            on = [str(x + 1) for x in np.flatnonzero(row)]
            lit = "no lamp on" if not on else f"lamp {on[0]} on" if len(on) == 1 else f"lamps {_names(on)} on"
            lines.append(f"- look {j + 1}: {lit}, the rest off.")
        if c.task in ("O-O", "RO-O"):
            ask = f"Which lamps are on in each of the next {c.m} minutes after your last look?"
            fmt = f"Give {c.m} lines, one per minute, each {c.width} digits for lamps 1 to {c.width}: 1 on, 0 off."
        else:
            when = "one minute" if k == 1 else f"{k} minutes"
            ask = f"Which lamps are on {when} after your last look?"
            fmt = f"Give one line of {c.width} digits for lamps 1 to {c.width}: 1 on, 0 off."
            if c.task == "O-SR":
                ask = ask[:-1] + ", and what is the rule?"
                fmt = (f"Give two lines: the lamps as {c.width} digits (1 on, 0 off), then the rule as "
                       f"{c.table_size} digits, what lamp i turns to for each pattern from all off "
                       f"({_neighbourhood(0, c.radius)}) up to all on ({_neighbourhood(c.table_size - 1, c.radius)}) "
                       f"read as binary numbers in counting order.")
        return "\n".join(lines + [ask, fmt, FORMAT_LINE])


def _neighbourhood(v: int, radius: int) -> str:
    """Neighbourhood number v as its cells, leftmost most significant (the tables' convention)."""
    return format(v, f"0{2 * radius + 1}b")


# --- group words ------------------------------------------------------------------------------------------------

@renders("group_words")
class GroupWordsText(Rendering):
    """A word of group elements; the prefix products (or the last one) asked."""

    def question(self, examples: dict, i: int) -> str:
        c = self.gen.config
        mask = examples["loss_mask"][i]
        word = self.words(examples["inputs"][i])
        every = bool(mask.sum() > 1)
        cyclic = c.group.startswith("Z")
        if self.style == "natural":
            if cyclic:
                m = int(c.group[1:])
                setup = (f"A dial has {m} positions, 0 to {m - 1}, and starts at 0. Each move turns it forward by "
                         f"the number given, wrapping round after {m - 1}.")
                asked = "where the dial points"
            else:
                n = len(self.vocab[0])
                setup = (f"{n} cards lie in a row of slots 0 to {n - 1}; card j starts in slot j. A move is written "
                         f"as {n} digits: after it, slot j holds the card that was in the slot named by digit j "
                         f"(counting from 0). An arrangement is written the same way: digit j names the card in "
                         f"slot j.")
                asked = "the arrangement"
            when = "after each move, in order" if every else "after the last move"
            return "\n".join([setup, f"The moves, in order: {word}.", f"What is {asked} {when}?",
                              "Give the answers separated by spaces." if every else "Give one answer.", FORMAT_LINE])
        group = (f"the cyclic group {c.group} (element j is rotation by j; the product adds modulo {c.group[1:]})"
                 if cyclic else f"the group {c.group} (permutations in one-line notation: digit j is the image of j; "
                 f"the product ab applies b first, (ab)(j) = a(b(j)))")
        want = ("the prefix products p_1 ... p_n, where p_t = g_1 g_2 ... g_t, separated by spaces" if every
                else "the product g_1 g_2 ... g_n")
        return "\n".join([f"Elements of {group}.", f"Word g_1 ... g_n: {word}", f"Give {want}.", FORMAT_LINE])


# --- facts ------------------------------------------------------------------------------------------------------

@renders("facts")
class FactsText(Rendering):
    """A query about a stored fact: an entity's attribute. Only a model that learnt the world can answer."""

    def question(self, examples: dict, i: int) -> str:
        c, mask = self.gen.config, examples["loss_mask"][i]
        asked = self.words(examples["inputs"][i][~mask])
        digits = f" (written as {int(mask.sum())} tokens)" if mask.sum() > 1 else ""
        if self.style == "natural":
            return "\n".join([f"You were told facts about {c.n_entities} people: each has {c.n_attributes} "
                              f"attributes, and each attribute one of {c.n_values} values.",
                              f"Recall the fact asked by: {asked}.", f"Give the value{digits}.", FORMAT_LINE])
        return "\n".join([f"A world of facts: {c.n_entities} entities with {c.n_attributes} attributes each, every "
                          f"attribute one of {c.n_values} values.", f"Query: {asked}",
                          f"Give the value{digits}.", FORMAT_LINE])


# --- multi-query associative recall -----------------------------------------------------------------------------

@renders("mqar")
class MQARText(Rendering):
    """Key-value pairs, then keys asked again: each asked key's value, in the order asked."""

    def question(self, examples: dict, i: int) -> str:
        d = int(examples["n_pairs"][i])
        inputs, mask = examples["inputs"][i], examples["loss_mask"][i]
        keys, values = inputs[: 2 * d : 2], inputs[1 : 2 * d : 2]
        queries = self.words(inputs[mask])
        if self.style == "natural":
            pairs = "; ".join(f"ticket {self.vocab[k]} holds coat {self.vocab[v]}" for k, v in zip(keys, values))
            return "\n".join([f"At a cloakroom: {pairs}.",
                              f"Guests hand in these tickets, in this order: {queries}.",
                              "Which coat does each ticket hold? Give the coats in the order the tickets came, "
                              "separated by spaces.", FORMAT_LINE])
        pairs = " ".join(f"{self.vocab[k]}:{self.vocab[v]}" for k, v in zip(keys, values))
        return "\n".join([f"Key:value pairs: {pairs}", f"Queries: {queries}",
                          "Give the value of each queried key, in query order, separated by spaces.", FORMAT_LINE])
