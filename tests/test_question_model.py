"""The question-kind model (rag/question_model.py), typo correction (rag/spelling.py) and numbers
read from abstracts (rag/numbers.py): behaviour over classes of questions, several wordings each.

The wordings below were written for these tests: none is in the training data (checked), so
they test what the model learned, not what it memorised.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from rag.numbers import direction, metric_in, reported
from rag.question_model import Kind, QuestionModel, features
from rag.spelling import Speller
from rag.text import terms

DATA = Path(str(resources.files("rag") / "data"))

# Several wordings per class of question, none from the training data.
WORDINGS = {
    Kind.OVERVIEW: ["Summarise what this collection has on few-shot segmentation.",
                    "overview of contrastive pretraining please",
                    "I just started working on pose estimation, which papers should I read first?",
                    "What is the big picture of research on image deblurring here?"],
    Kind.EXISTS: ["Is there any paper here that uses spiking neural networks for detection?",
                  "has anybody tried diffusion models for medical image denoising",
                  "Do you have anything about satellite image super-resolution?",
                  "Is there a study that applies transformers to weather forecasting?"],
    Kind.HOW: ["How does deformable attention work?",
               "Can you explain how knowledge distillation transfers dark knowledge?",
               "what's the intuition behind batch normalization",
               "In what way do one-stage detectors differ from two-stage detectors?"],
    Kind.ORIGIN: ["Which paper first introduced the squeeze-and-excitation block?",
                  "who came up with the term 'inductive bias' for vision transformers?",
                  "Where was the ShuffleNet architecture originally proposed?"],
    Kind.SUPERLATIVE: ["Which paper has the lowest FID on CelebA?",
                       "what's the best mAP anyone reports on COCO",
                       "Which method achieves the highest top-1 accuracy on ImageNet in this collection?"],
    Kind.LIMITS: ["What are the drawbacks of NeRF according to these papers?",
                  "main weaknesses of self-supervised pretraining?",
                  "What open problems do the papers mention for video captioning?"],
    Kind.CHITCHAT: ["many thanks, that was useful!", "good evening to you",
                    "what kinds of things can you help me with?"],
}

# Classes that decide between one paper and a topic, and between a yes/no and a list, whatever
# the wording (written for this test; none in the training data).
CLASSES = {
    "one paper described, not named, then asked about": (Kind.FACT, [
        "for the sign-language glove paper, which sensors did they use?",
        "In the study that distils BERT into an LSTM, how big is the student?",
        "that graph-pooling work with the learned clusters: what datasets was it tested on?",
        "re: the event-camera optical flow method, which baselines does it beat?"]),
    "a yes/no in chat register": (Kind.EXISTS, [
        "quick y/n: anything here on pruning recurrent nets?",
        "I want to detect sarcasm in memes using both the picture and the caption. has anyone done that?",
        "is there something in this collection about radar-based gesture recognition or nah",
        "does the corpus say anything at all about protein folding?"]),
    "the best option inside one study": (Kind.FACT, [
        "in the ablations of the token-merging paper, which merging schedule worked best?",
        "which augmentation policy came out on top in that AutoAugment-style study?",
        "for the distillation-for-detectors work, what loss gave the biggest gain?"]),
    "the best number across papers": (Kind.SUPERLATIVE, [
        "highest PSNR anyone here reports on Set5?",
        "which paper gets the best word error rate on LibriSpeech",
        "lowest EER reported for speaker verification in these papers?"]),
}


def _training_questions() -> set[str]:
    return {json.loads(line)["question"].lower() for path in DATA.glob("question_kinds*.jsonl")
            for line in path.read_text().splitlines() if line.strip()}


def test_test_wordings_are_not_training_examples():
    seen = _training_questions()
    assert not [q for qs in WORDINGS.values() for q in qs if q.lower() in seen]


@pytest.mark.parametrize("kind", list(WORDINGS))
def test_each_class_of_question_is_recognised_in_several_wordings(kind):
    model = QuestionModel.packaged()
    wrong = [(q, model.predict(q).kind) for q in WORDINGS[kind] if model.predict(q).kind != kind]
    # A class, not one wording: all but at most one wording of each class must be read right.
    assert len(wrong) <= 1, wrong


@pytest.mark.parametrize("name", list(CLASSES))
def test_one_paper_or_a_topic_yes_no_or_list_is_read_as_a_class(name):
    kind, wordings = CLASSES[name]
    assert not [q for q in wordings if q.lower() in _training_questions()]
    model = QuestionModel.packaged()
    wrong = [(q, model.predict(q).kind) for q in wordings if model.predict(q).kind != kind]
    assert len(wrong) <= 1, wrong  # a class: all but at most one wording read right


def test_held_out_accuracy_of_the_packaged_model():
    figures = json.loads((DATA / "question_model.json").read_text())["figures"]
    assert figures["held_out"] >= 150  # the split that is never fitted is a real sample
    assert figures["held_out_accuracy"] >= 0.85


def test_frame_words_leave_the_topic_for_search():
    model = QuestionModel.packaged()
    for question, topic in [
        ("Summarize what the collection says about diffusion models", "diffusion models"),
        ("Give me an overview of knowledge distillation", "knowledge distillation"),
        ("Has anyone used spiking neural networks?", "spiking neural networks"),
    ]:
        searched = model.topic(question)
        assert topic in searched and len(searched) < len(question), (question, searched)
    assert model.topic("Summarize") == "Summarize"  # nothing but frame words: kept as asked


# Chat wrappers around a topic, in wordings of no training example (checked below).
CHAT_WRAPPED = [
    ("hey quick q, gimme the rundown on diffusion models pls", "diffusion models"),
    ("newbie here, any refs on knowledge distillation? tbh idk where to begin", "knowledge distillation"),
    ("my advisor wants a primer on point clouds asap, can u help", "point clouds"),
    ("ngl the lowdown on graph neural networks would be super helpful fyi", "graph neural networks"),
]


@pytest.mark.parametrize(("question", "gone", "kept"), [
    ("I train a ResNet on X-rays. What should I read about attention blocks?", "what", "attention"),
    ("We have drone footage. Which detectors work on tiny objects?", "which", "detectors"),
    ("Which parts of the input drove the decision?", "which", "parts"),
])
def test_an_interrogative_that_opens_a_sentence_leaves_the_search(question, gone, kept):
    """An interrogative opens each sentence of a question that gives context first; inside a
    sentence it may belong to the topic, so only sentence openings are dropped."""
    searched = QuestionModel.packaged().topic(question).lower().split()
    assert gone not in searched and kept in searched, searched


def test_chat_wrappings_are_not_training_examples():
    seen = _training_questions()
    assert not [q for q, _ in CHAT_WRAPPED if q.lower() in seen]


@pytest.mark.parametrize(("question", "topic"), CHAT_WRAPPED)
def test_chat_words_leave_the_search(question, topic):
    """The words people wrap a topic in when they chat ("rundown", "pls", "newbie", "my
    advisor") are frame words: search, and the abstention model, see the topic."""
    searched = QuestionModel.packaged().topic(question).lower()
    assert topic in searched, searched
    chat = {"quick", "gimme", "rundown", "pls", "newbie", "refs", "tbh", "idk", "my", "advisor", "primer",
            "asap", "u", "ngl", "lowdown", "helpful", "fyi"}
    assert not chat & set(searched.replace(",", " ").replace("?", " ").split()), searched


def test_chat_words_are_told_from_topics_the_examples_repeat():
    """A word no abstract uses, asked in examples of several kinds, is a chat word when it goes
    with any topic ("pls") and a topic when it mostly goes with the same topic word
    ("counting" with "crowd"): the corpus lacking a topic does not make it chat."""
    from eval.train_questions import frame_words

    topics = [f"topic{i}" for i in range(100)]
    kinds = ["list", "overview", "how", "exists", "limits", "fact"]
    rows = [(f"which papers study {t} and {u}?", "list") for t in topics for u in topics[:5]]
    rows += [(f"papers on {t} pls", kinds[i % 6]) for i, t in enumerate(topics[:12])]
    rows += [(f"papers on crowd counting {t}", kinds[i % 6]) for i, t in enumerate(topics[:8])]
    abstracts = [" ".join(["crowd", *topics])]  # no abstract uses "pls" or "counting"
    found = frame_words([q for q, _ in rows], abstracts, [k for _, k in rows], weight={})
    assert "pls" in found
    assert "counting" not in found and "crowd" not in found


def test_a_topic_phrase_with_an_asking_word_and_a_metric_stay_topics():
    """Class: a word no abstract uses, asked in several kinds, that mostly goes with a word which
    elsewhere asks ("radiology" with "report", which "what do the papers report" makes a frame
    word) is a topic; and the words of a metric's name ("error rate") are what a question asks
    about, however often the examples use them."""
    from eval.train_questions import frame_words

    topics = [f"topic{i}" for i in range(100)]
    kinds = ["list", "overview", "how", "exists", "limits", "fact", "superlative"]
    rows = [(f"which papers study {t} and {u}?", "list") for t in topics for u in topics[:8]]
    rows += [(f"what do the papers report on {t}?", kinds[i % 6]) for i, t in enumerate(topics[:6])]
    rows += [(f"papers on radiology report {t}", kinds[i % 6]) for i, t in enumerate(topics[:8])]
    rows += [(f"which paper has the lowest error rate on {t}?", "superlative") for t in topics[:40]]
    rows += [(f"what error rate does {t} reach?", "fact") for t in topics[40:80]]
    abstracts = [" ".join(topics), "filler " * 5000, "We report results."] + ["We reach an error rate of 3.1%."] * 3
    found = frame_words([q for q, _ in rows], abstracts, [k for _, k in rows],
                        weight={"report": 3.0, "rate": 3.0, "error": 3.0})
    assert "report" in found  # it asks, in the questions that do not write about radiology
    assert "radiology" not in found
    assert "rate" not in found and "error" not in found


@pytest.mark.parametrize("question", [
    "Give me an overview of what the collection says about diffusion models",
    "What do the papers say about diffusion models, and what should I read first?",
    "explain what the corpus says on diffusion models",
    "According to these papers, how many diffusion models are there?",
])
def test_inflected_and_kind_telling_frame_words_leave_the_search(question):
    """Frame words in a regular inflection ("says" of "say"), and the words the model tells the
    kind by ("overview", "should", "explain"), say how the question asks: search drops them."""
    words = QuestionModel.packaged().topic(question).lower().split()
    assert "diffusion" in words
    # "first" is not among them: abstracts use it too ("the first", "first-order").
    assert not {"says", "say", "overview", "should", "explain", "according"} & set(words), words


def test_a_topic_word_that_merely_starts_like_a_frame_word_stays():
    model = QuestionModel.packaged()
    assert "explaining" in model.topic("Summarize the work on explaining vision models with concepts")


def test_features_are_typo_tolerant():
    """Character trigrams inside words: a typo keeps most of a word's features."""
    right, typo = set(features("segmentation")), set(features("segmantation"))
    assert len(right & typo) / len(right | typo) > 0.4


def test_speller_corrects_against_the_index_vocabulary():
    df = {"transform": 40, "segment": 30, "imag": 90, "loftr": 2, "detect": 50}
    speller = Speller(lambda stem: df.get(stem, 0), keep={"summarize"}, is_word={"stock", "images"}.__contains__)
    assert speller.correct("tranformer segmantation of images") == "transformer segmentation of images"
    assert speller.correct("Tranformers") == "Transformers"
    assert speller.correct("LoFTR loftr") == "LoFTR loftr"  # known, or a name: left alone
    assert speller.correct("summarize quantum") == "summarize quantum"  # a question word; no candidate
    assert speller.correct("detecton") == "detection"
    assert speller.correct("stock prices") == "stock prices"  # an English word the index lacks: no typo


def test_speller_splits_a_compound_typed_closed_where_the_abstracts_write_a_phrase():
    df = {"few": 5, "shot": 5, "zero": 3, "learn": 9}
    phrases = {("few", "shot"): 4, ("zero", "shot"): 2, ("fews", "hot"): 0}
    speller = Speller(lambda stem: df.get(stem, 0), is_word={"few", "shot", "zero", "learning"}.__contains__,
                      phrase_count=lambda pair: phrases.get(pair, 0))
    assert speller.correct("fewshot learning") == "few-shot learning"
    assert speller.correct("Zeroshot") == "Zero-shot"
    assert speller.correct("deepfake") == "deepfake"  # no abstract puts "deep fake" side by side
    assert Speller(lambda stem: df.get(stem, 0), is_word=bool).correct("fewshot") == "fewshot"  # no phrase lookup


def test_speller_expands_abbreviations_to_words_the_index_holds():
    df = {"object": 60, "imag": 90, "segment": 30, "deploy": 3}
    speller = Speller(lambda stem: df.get(stem, 0))  # the real English dictionary
    assert speller.correct("obj segmentaion in imgs") == "object segmentation in images"
    assert speller.correct("dpo for chat models") == "dpo for chat models"  # no word starts "dp...o" here


@pytest.mark.parametrize("typed, meant", [
    ("seg", "segmentation"), ("impl", "implementation"), ("perf", "performance"),  # clipped words
    ("txt", "text"), ("imgs", "images"),  # contractions that keep the first letter
    ("recog", "recognition"),  # a clip the index knows from one chunk, its word from many
])
def test_speller_reads_both_classes_of_abbreviation(typed, meant):
    df = {"segment": 80, "set": 200, "implement": 30, "improv": 40, "perform": 150, "per": 300, "text": 25,
          "imag": 90, "recog": 1, "recognit": 100}
    speller = Speller(lambda stem: df.get(stem, 0))  # the real English dictionary
    corrected = speller.correct(f"{typed} for vision")
    assert terms(corrected) == terms(f"{meant} for vision"), corrected  # "segment" searches as "segmentation"


def test_speller_prefers_an_english_word_to_a_more_frequent_stem():
    """"semantation" (not a word) shares its stem with "semantic", which more chunks hold."""
    df = {"segment": 30, "semant": 120}
    speller = Speller(lambda stem: df.get(stem, 0))
    assert speller.correct("segmantation") == "segmentation"


def test_speller_leaves_english_words_to_the_abstention_model():
    from rag.spelling import english

    is_word = english()
    assert is_word("stock") and is_word("forecasting") and not is_word("tranformer")


def test_numbers_are_read_with_their_metric():
    sentence = "On CIFAR-10 our ResNet-110 reaches 6.4% error, and 27.2% error on CIFAR-100, in 2016."
    assert [r.value for r in reported(sentence, "error")] == [6.4]
    assert metric_in("Which paper reports the lowest error on CIFAR-10?") == "error"
    assert direction("Which paper reports the lowest error on CIFAR-10?", "error") == "min"
    assert direction("best top-1 accuracy on ImageNet", "top-1") == "max"
    assert direction("best error rate on SVHN", "error") == "min"
    assert reported("No numbers about error here.", "error") == []


@pytest.mark.slow
def test_the_packaged_model_is_what_the_labelled_questions_give():
    """Refitting (deterministic: a fixed split, lbfgs) gives exactly the packaged file, so the
    model in the repo is the one its training data and `python -m eval.train_questions` make."""
    from eval.train_questions import load, train

    model, _ = train(load())
    assert model == json.loads((DATA / "question_model.json").read_text())
