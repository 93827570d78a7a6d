"""Per-store abstention thresholds: where a store's answerable questions and off-topic ones part.

One fixed evidence threshold does not transfer between stores: an off-topic question finds a
loosely related sentence more easily in an encyclopedia than in a handbook, and a store of terse
reference text scores its own answerable questions higher than a store of prose does. So each
store gets its own threshold, fitted on two sets of probes scored exactly as questions are:

- off-topic probes: a fixed, built-in set of questions on many subjects (OFF_TOPIC_PROBES); most
  of them are about nothing the store holds, so their scores show how high "no answer" reaches;
- answerable probes: short word runs of the store's own sentences (its content words, in order),
  which the store can answer by construction.

The threshold sits a share LAMBDA of the way from the off-topic probes' upper quantile to the
answerable probes' lower quantile (quantiles, not extremes, so that an off-topic probe that
happens to be on topic for this store moves nothing), within [FLOOR, CEILING]. `llmkit rag index`
stores it in the manifest; a store indexed another way is calibrated when first asked.
"""

from __future__ import annotations

import re

import numpy as np

from llmkit.sentences import is_quotable, split_sentences

VERSION = 3  # raised whenever evidence scoring or the probes change: older calibrations are refitted
LAMBDA = 0.5
OFF_QUANTILE = 0.9  # of the off-topic probes' scores
ANSWERABLE_QUANTILE = 0.1  # of the answerable probes' scores
FLOOR, CEILING = 0.25, 0.55  # a threshold outside these means the probes failed, not that the store is odd
N_ANSWERABLE = 60
WINDOW = 6  # content words per answerable probe: about a question's length
SEED = 0

OFF_TOPIC_PROBES = (
    "Who won the Tour de France in 1998?",
    "What is the capital city of Canada?",
    "How many calories are in a banana?",
    "When did the Berlin Wall fall?",
    "How do I get a refund for a cancelled flight?",
    "Which planet has the most moons?",
    "Who composed the Four Seasons?",
    "How long does it take to learn to drive?",
    "What is the interest rate on a fixed mortgage?",
    "How do I remove a red wine stain from a carpet?",
    "What language is spoken in Brazil?",
    "How tall is the Burj Khalifa?",
    "What are the rules of cricket?",
    "When was penicillin discovered?",
    "How many bones are in the human body?",
    "Which actor played James Bond in Goldfinger?",
    "How do hurricanes form?",
    "What is the best way to store fresh basil?",
    "How much does a new passport cost?",
    "Who was the first emperor of China?",
    "What does a cardiologist treat?",
    "How do I knit a scarf?",
    "Which river flows through Cairo?",
    "What is the plot of Hamlet?",
    "How do I replace a car battery?",
    "What vaccines does a kitten need?",
    "Who invented the telephone?",
    "What is the deepest lake in the world?",
    "How do I apply for a student loan?",
    "What is the population of Nigeria?",
    "How do I set up a home aquarium?",
    "Which team won the 2010 NBA finals?",
    "What is the melting point of gold?",
    "How do I prune a rose bush?",
    "Who wrote One Hundred Years of Solitude?",
    "What time zone is New Zealand in?",
    "How does a credit score work?",
    "How many strings does a cello have?",
    "What is the main ingredient of hummus?",
    "Why do cats purr?",
    "How do I become an airline pilot?",
    "What is the GDP of Germany?",
    "Where is the Great Barrier Reef?",
    "How do I treat a sprained ankle?",
    "What did the Magna Carta establish?",
    "How often should I water a cactus?",
    "What is the fastest land animal?",
    "How do I configure a VLAN on a network switch?",
    "What is the time complexity of quicksort?",
    "How do I center a div with CSS?",
    "What is the difference between TCP and UDP?",
    "How do I write a SQL join across three tables?",
    "What does a p-value measure in statistics?",
    "How do I solder a resistor onto a circuit board?",
    "What is the torque of a diesel engine?",
    "How do I declare a pointer in C?",
    "What causes inflation in an economy?",
    "How are bridges designed to withstand earthquakes?",
    "What is a mitochondrion?",
    "How do I file a patent application?",
)


def answerable_probes(texts: list[str], n: int = N_ANSWERABLE, window: int = WINDOW) -> list[str]:
    """Short runs of content words from the texts' sentences: questions the texts answer by construction."""
    from llmkit.rag.retrieval import STOPWORDS

    sentences = list(dict.fromkeys(s for t in texts for s in split_sentences(t) if is_quotable(s)))
    runs = []
    for sentence in sentences:
        words = [w for w in re.findall(r"[^\W\d_][\w'-]*", sentence) if w.lower() not in STOPWORDS]
        if len(words) >= 3:
            runs.append(words)
    if not runs:
        return []
    rng = np.random.default_rng(SEED)
    picked = rng.choice(len(runs), n, replace=len(runs) < n)  # a small store: some sentences twice
    probes = []
    for i in picked:
        words = runs[i]
        start = int(rng.integers(0, max(1, len(words) - window + 1)))
        probes.append(" ".join(words[start : start + window]))
    return probes


def place_threshold(off_topic: list[float], answerable: list[float]) -> float:
    """The threshold between the two probe sets' scores (see the module docstring)."""
    low = float(np.quantile(off_topic, OFF_QUANTILE))
    high = float(np.quantile(answerable, ANSWERABLE_QUANTILE)) if answerable else low
    return round(float(np.clip(low + LAMBDA * (high - low), FLOOR, CEILING)), 4)


class _CachedEmbedder:
    """The store's embedder, remembering each text's vector: probes share most retrieved sentences.

    While `collecting`, it only notes the texts asked for (and returns zeros), so that a first pass
    can gather every sentence the probes need and embed them in one batch.
    """

    def __init__(self, embedder):
        self.embedder, self.cache, self.wanted, self.collecting = embedder, {}, [], False

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.collecting:
            self.wanted.extend(texts)
            return np.zeros((len(texts), self.embedder.dim), np.float32)
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.embedder.encode(missing)))
        return np.stack([self.cache[t] for t in texts]) if texts else self.embedder.encode([])


def calibrate_store(store, k: int = 5) -> dict:
    """Fit the abstention threshold of every retrieval mode to this store; {"min_score": {mode: t}, ...}."""
    from llmkit.rag.abstain import Gate
    from llmkit.rag.retrieval import MODES, Retriever

    ids, _ = store.vectors()
    rng = np.random.default_rng(SEED)
    sample = rng.choice(ids, min(len(ids), 4 * N_ANSWERABLE), replace=False) if len(ids) else ids
    texts = [c["text"] for c in store.chunks([int(i) for i in sample]).values()]
    answerable = answerable_probes(texts)
    questions = list(OFF_TOPIC_PROBES) + answerable
    embedder = _CachedEmbedder(store.embedder)
    vectors = dict(zip(questions, embedder.encode(questions)))
    retriever = Retriever(store)
    retriever.embed = vectors.__getitem__  # every probe is embedded once, in one batch
    retrieved = {mode: [retriever.retrieve(q, k, mode) for q in questions] for mode in MODES}
    gate = Gate(min_score=-1.0)
    embedder.collecting = True  # first pass: which sentences are needed
    for mode in MODES:
        for hits, vector in retrieved[mode]:
            gate.evaluate(embedder, vector, hits, mode)
    embedder.collecting = False
    embedder.encode(list(dict.fromkeys(embedder.wanted)))
    thresholds, detail = {}, {}
    for mode in MODES:
        scores = [gate.evaluate(embedder, v, hits, mode).score for hits, v in retrieved[mode]]
        off, ans = scores[: len(OFF_TOPIC_PROBES)], scores[len(OFF_TOPIC_PROBES) :]
        thresholds[mode] = place_threshold(off, ans)
        detail[mode] = {
            "off_topic_q90": round(float(np.quantile(off, OFF_QUANTILE)), 4),
            "answerable_q10": round(float(np.quantile(ans, ANSWERABLE_QUANTILE)), 4) if ans else None,
        }
    return {
        "min_score": thresholds,
        "generation": store.loaded_generation,
        "probes": {"off_topic": len(OFF_TOPIC_PROBES), "answerable": len(answerable)},
        "modes": detail,
    }


def ensure_calibrated(store) -> dict:
    """The store's calibration, refitted and saved in its manifest if the store changed since the last fit."""
    for _ in range(3):  # another process may index while this fits: fit again what the store then holds
        calibration = store.config.get("calibration")
        current = calibration and calibration.get("version") == VERSION
        if current and calibration.get("generation") == store.loaded_generation:
            return calibration
        calibration = (
            calibrate_store(store)
            if len(store)
            else {"min_score": None, "generation": store.loaded_generation}
        )
        calibration["version"] = VERSION
        if store.save_manifest_entry("calibration", calibration, calibration["generation"]):
            return calibration
    return calibration


def store_thresholds(store) -> dict | None:
    """{mode: threshold} fitted to this store when it was last indexed, or None (never calibrated)."""
    calibration = store.config.get("calibration") or {}
    if calibration.get("generation") != store.loaded_generation:
        # `rag index` in another process saves the calibration just after the documents: a server
        # that reloaded in between picks it up here
        fresh = (store._read_manifest() or {}).get("calibration") or {}
        if fresh.get("generation") == store.loaded_generation:
            store.config["calibration"] = calibration = fresh
    return calibration.get("min_score")
