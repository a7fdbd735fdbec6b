"""Name detection (rag/names.py), question analysis (rag/questions.py) and conversation
(rag/conversation.py): pure, no index."""

from __future__ import annotations

import pytest

from rag.conversation import cited_titles, previous_turn
from rag.models import Paper
from rag.names import Mention, NameIndex, display_name, find_word, resolve, short_name, title_head
from rag.questions import Query, analyse

PAPERS = {
    "convit": Paper("convit", "ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases",
                    "We propose ConViT, a hybrid model."),
    "cvt": Paper("cvt", "CvT: Introducing Convolutions to Vision Transformers", "We present CvT."),
    "osnet": Paper("osnet", "Omni-Scale Feature Learning for Person Re-Identification",
                   "We design a re-ID network, termed omni-scale network (OSNet)."),
    "review": Paper("review", "Rethinking: Nothing in Particular", "A plain abstract."),
}


def test_short_names_come_from_the_head_before_a_colon():
    assert short_name(PAPERS["convit"].title) == "ConViT"
    assert short_name(PAPERS["review"].title) == ""  # a common word names nothing
    assert display_name(PAPERS["review"].title) == PAPERS["review"].title
    assert title_head("Prototypical Networks for Few-shot Learning") == "Prototypical Networks"
    assert title_head("A Tour of Convolutional Networks") == "" and title_head(PAPERS["cvt"].title) == ""
    long_head = "Attention is All You Need? Good Embeddings with Statistics are enough: Audio"
    assert short_name(long_head) == long_head.split(":")[0] and display_name(long_head) == long_head
    assert find_word("is cvt fast?", "cvt") == 3 and find_word("cvts", "cvt") == -1


def test_papers_named_by_short_name_title_and_defined_method_name():
    names = NameIndex(PAPERS)
    assert names.find("How do ConViT and CvT differ?") == ["convit", "cvt"]
    assert names.find("What does OSNet learn?") == ["osnet"]
    assert names.find("What does OSNet learn?", strong_only=True) == []
    assert names.find("omni-scale feature learning for person re-identification: what is it?") == ["osnet"]
    assert names.by_title("CvT:  Introducing Convolutions to Vision Transformers") == ["cvt"]


def test_the_tail_of_a_hyphenated_name_names_nothing():
    """"SimCLR" is not "G-SimCLR", nor "ResNet" "Inception-ResNet"; the whole short name still names its paper."""
    names = NameIndex({
        "gsim": Paper("gsim", "G-SimCLR : Self-Supervised Contrastive Learning with Guided Projection",
                      "NT-Xent loss (as used in SimCLR)."),
        "incep": Paper("incep", "Inception-v4, Inception-ResNet and the Impact of Residual Connections",
                       "We study residual connections."),
    })
    assert names.find("How does MoCo differ from SimCLR?") == []
    assert names.find("Does ResNet beat v4?") == []
    assert names.find("How does G-SimCLR differ from BYOL?") == ["gsim"]


def test_uncoloned_heads_name_a_paper_only_where_the_phrase_is_rare():
    proto = Paper("proto", "Prototypical Networks for Few-shot Learning", "We propose prototypical networks.")
    cnns = {f"cnn{i}": Paper(f"cnn{i}", f"Convolutional Neural Networks for Task {i}", "Convolutional networks.")
            for i in range(3)}
    papers = {"proto": proto, **cnns}
    names = NameIndex(papers)
    assert names.find("How do Prototypical Networks classify?") == ["proto"]
    assert names.find("What do convolutional neural networks do?") == []  # a topic, not a name


def test_a_colon_head_of_ordinary_words_names_a_paper_only_where_the_phrase_is_rare():
    """"Knowledge distillation: A good teacher ..." is one paper's head, and a topic that many
    abstracts share; "Grad-CAM: ..." is a coined name however many abstracts cite it."""
    kd = Paper("kd", "Knowledge distillation: A good teacher is patient and consistent", "We distill.")
    gradcam = Paper("gradcam", "Grad-CAM: Visual Explanations from Deep Networks", "We propose Grad-CAM.")
    users = {f"u{i}": Paper(f"u{i}", f"Study {i}", "We use knowledge distillation and compare with Grad-CAM.")
             for i in range(3)}
    names = NameIndex({"kd": kd, "gradcam": gradcam, **users})
    for question in ("what do these papers say about knowledge distillation?",
                     "Give me an overview of knowledge distillation", "knowledge distillation limitations"):
        assert names.find(question, strong_only=True) == [], question
    assert names.find("How does Grad-CAM work?", strong_only=True) == ["gradcam"]
    assert names.by_title("Knowledge distillation") == ["kd"]  # an answer's bold short name still reads back


def test_a_quoted_full_title_wins_over_a_short_name_inside_it():
    papers = {"rl": Paper("rl", "Representation Learning: A Review and New Perspectives", "A review."),
              "ctx": Paper("ctx", "Unsupervised Visual Representation Learning by Context Prediction", "Context.")}
    names = NameIndex(papers)
    quoted = "What does 'Unsupervised Visual Representation Learning by Context Prediction' predict?"
    assert names.find(quoted) == ["ctx"]
    assert names.find("What does Representation Learning review?") == ["rl"]


def test_longer_overlapping_mention_wins():
    kept = resolve([Mention(0, 40, ("a",), True), Mention(10, 24, ("b",), True), Mention(50, 55, ("c",), False)])
    assert [m.paper_ids for m in kept] == [("a",), ("c",)]


def test_what_the_question_names_shapes_its_kind():
    """The kind comes from the question model; what the question names decides the rest:
    a comparison needs two named things, and a question about one identified paper is single."""
    names = NameIndex(PAPERS)
    assert analyse("How do ConViT and CvT differ?", None, names).kind == "compare"
    concept = analyse("How do anchor-free detectors differ from anchor-based ones?", None, names)
    assert concept.kind == "how" and not concept.single  # nothing named: a concept, not a comparison
    fact = analyse("What accuracy does CvT reach?", None, names)
    assert fact.kind == "fact" and fact.single and fact.titled == ("cvt",)
    for topic in ("graph neural networks", "self-supervised depth estimation from video"):
        assert analyse(topic, None, names).kind == "list", topic  # a bare topic, as typed into a search box
    for question in ("How does CvT add convolutions?", "Who proposed CvT?", "What are the weaknesses of CvT?"):
        q = analyse(question, None, names)
        assert q.single and q.titled == ("cvt",), question  # one identified paper, whatever the kind
    builds = analyse("Which papers build on CvT?", None, names)
    assert builds.kind == "list" and not builds.single  # a list over the corpus keeps its shape


def test_two_names_ask_to_compare_only_when_joined():
    names = NameIndex(PAPERS)
    assert analyse("How do ConViT and CvT each add convolutions?", None, names).kind == "compare"
    assert analyse("What do 'ConViT' and 'CvT' add to transformers?", None, names).kind == "compare"
    # An "and" elsewhere joins no names: a question about CvT that mentions OSNet in passing.
    fact = analyse("Trained and tested like OSNet, what accuracy does CvT reach?", None, names)
    assert fact.named == ("osnet", "cvt") and fact.kind == "fact" and fact.titled == ("cvt",)
    # Two names set against each other, however it is worded, ask to compare.
    for question in ("Which is faster, ConViT or CvT?", "How is ConViT different from CvT?",
                     "What distinguishes ConViT from CvT?", "Is ConViT better than CvT?", "ConViT compared to CvT",
                     "Does ConViT outperform CvT?", "What do ConViT and CvT have in common?"):
        assert analyse(question, None, names).kind == "compare", question


def test_previous_turn_reads_structured_citations_first():
    history = [{"role": "user", "content": "Which papers add convolutions?"},
               {"role": "assistant", "content": "anything", "citations": [{"n": 2, "paper_id": "cvt"},
                                                                           {"n": 1, "paper_id": "convit"}]}]
    turn = previous_turn(history)
    assert turn.question == "Which papers add convolutions?" and turn.cited_ids == ("convit", "cvt")


def test_previous_turn_reads_an_answers_plain_text():
    text = ("Papers in the corpus that match (2):\n\n1. **CvT: Introducing Convolutions to Vision Transformers** [1]: x"
            "\n2. **ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases** [2]: y")
    assert cited_titles(text) == (PAPERS["cvt"].title, PAPERS["convit"].title)
    assert cited_titles("Text.\n\nReferences:\n\n[1] A title\n[2] B title") == ("A title", "B title")


def test_follow_up_is_restricted_to_the_cited_papers_and_ordinals_pick_one():
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "Which papers add convolutions to ViTs?"},
               {"role": "assistant", "content": "1. **CvT** [1]: a\n2. **ConViT** [2]: b"}]
    q = analyse("Which of those use ImageNet?", history, names)
    assert isinstance(q, Query) and q.follow_up and q.restrict == ("cvt", "convit")
    assert "ImageNet" in q.searched and "those" not in q.searched  # the pointer names no topic
    assert analyse("What does the second one report?", history, names).restrict == ("convit",)
    # "the ones", "which one" and a leading "only" point back too.
    for question in ("Only the ones for medical images", "Which one is the fastest?", "Only those from 2021?"):
        assert analyse(question, history, names).restrict == ("cvt", "convit"), question
    for question in ("Which one-stage detectors are there?", "Which papers study the one-shot setting?"):
        assert not analyse(question, history, names).follow_up, question
    # Two positions that are set against each other compare those two papers.
    both = analyse("How does the first compare with the second?", history, names)
    assert both.restrict == ("cvt", "convit") and both.kind == "compare"
    assert analyse("Compare the second and the first", history, names).restrict == ("convit", "cvt")
    fresh = analyse("Which of those use ImageNet?", history, names, follow_up=False)
    assert not fresh.follow_up and fresh.restrict is None


def test_a_question_without_its_own_subject_is_a_follow_up():
    """"Which use ...", "Do any report ..." name no papers of their own: they ask about the
    previous answer's. The same words with a subject ("Which papers use ...") ask anew, and
    nothing is a follow-up without an earlier question."""
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "Which papers add convolutions to ViTs?"},
               {"role": "assistant", "content": "1. **CvT** [1]: a\n2. **ConViT** [2]: b"}]
    for question in ("Which use ImageNet?", "Do any report results on ImageNet?", "Any that are self-supervised?",
                     "Which also report FLOPs?", "which relies on distillation?", "Which is faster?",
                     "Which ones train on JFT?"):
        q = analyse(question, history, names)
        assert q.follow_up and q.restrict == ("cvt", "convit"), question
        assert not analyse(question, None, names).follow_up, question
    for question in ("Which papers use ImageNet?", "Do any papers report FLOPs?", "Which works use JFT?",
                     "Which studies train on JFT?", "Which models use attention?", "Which datasets are used?"):
        assert not analyse(question, history, names).follow_up, question
    # "it" points back, unless it is the empty subject of "is it possible", "it is known".
    for question in ("How does it compare to MoCo?", "What dataset does it use?", "Is it trained on JFT?"):
        assert analyse(question, history, names).restrict == ("cvt", "convit"), question
    for question in ("Is it possible to train ViTs without labels?", "It is known that ViTs need data: which papers?",
                     "What makes it hard to train GANs?", "Which papers study bit-width?"):
        assert not analyse(question, history, names).follow_up, question


def test_a_method_name_its_paper_coins_names_that_paper_not_one_citing_it():
    """"Does ConvNeXt use attention?": the paper that says "dubbed ConvNeXt" is asked about, not
    one that names ConvNeXt in parentheses among its backbones; a title's token is no coinage."""
    papers = {"convnext": Paper("convnext", "A ConvNet for the 2020s", "Pure ConvNet models dubbed ConvNeXt."),
              "spark": Paper("spark", "Designing BERT for Convolutional Networks", "Backbones: ResNet and (ConvNeXt)."),
              "in1k": Paper("in1k", "Toward Errorless Training ImageNet-1k", "We train on ImageNet-1k.")}
    names = NameIndex(papers)
    q = analyse("Does ConvNeXt use attention?", None, names)
    assert q.kind == "fact" and q.titled == ("convnext",)
    assert analyse("What top-1 accuracy on ImageNet-1k does it reach?", None, names).titled == ()


def test_a_follow_up_about_each_earlier_paper_is_told_from_one_that_chooses():
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "Which papers add convolutions to ViTs?"},
               {"role": "assistant", "content": "1. **CvT** [1]: a\n2. **ConViT** [2]: b"}]
    for question in ("What did they find?", "How do they evaluate their models?", "What datasets do they both use?",
                     "tell me more"):
        q = analyse(question, history, names)
        assert q.follow_up and q.each, question
    for question in ("Which of those use ImageNet?", "What about those for medical images?", "Only those from 2021",
                     "Any that are self-supervised?", "What does the second one report?", "How does it compare?"):
        q = analyse(question, history, names)
        assert q.follow_up and not q.each, question


def test_how_many_papers_is_a_list_question():
    q = analyse("How many papers are about GANs?", None, NameIndex(PAPERS))
    assert q.kind == "list" and "GANs" in q.searched and "papers" not in q.searched


def test_a_position_picks_from_the_last_answer_that_listed_that_many():
    """After a list and then "summarise the first one" (one paper), "and the third?" is the
    list's third paper; with no list that long, the last answer's papers are kept."""
    names = NameIndex(PAPERS)
    listing = [{"role": "user", "content": "Which papers add convolutions?"},
               {"role": "assistant", "content": "x", "citations": ["cvt", "convit", "osnet"]}]
    summary = [{"role": "user", "content": "Summarise the first one"},
               {"role": "assistant", "content": "y", "citations": ["cvt"]}]
    history = listing + summary
    assert analyse("And the third?", history, names).restrict == ("osnet",)
    assert analyse("What about the last one?", history, names).restrict == ("osnet",)
    assert analyse("What does the first one report?", history, names).restrict == ("cvt",)
    assert analyse("Which of those use ImageNet?", history, names).restrict == ("cvt",)  # no position: the last answer
    assert analyse("And the fifth?", history, names).restrict == ("cvt",)
    three = analyse("Compare the first, the second and the third", history, names)
    assert three.restrict == ("cvt", "convit", "osnet") and three.kind == "compare"
    two = analyse("compare the first two", history, names)
    assert two.restrict == ("cvt", "convit") and two.kind == "compare"
    assert analyse("How do the last two differ?", history, names).restrict == ("convit", "osnet")


def test_which_papers_use_it_asks_about_the_earlier_topic():
    """After "What is masked image modeling?" (answered from one paper), "Which papers use it?"
    asks for masked-image-modeling papers: searched with the earlier question, not restricted."""
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "What is masked image modeling?"},
               {"role": "assistant", "content": "x", "citations": ["cvt"]}]
    for question in ("Which papers use it?", "Are there other papers on this?", "Show me papers that build on it"):
        q = analyse(question, history, names)
        assert q.follow_up and q.restrict is None and "masked image modeling" in q.text, question
    for question in ("Which of those use it?", "Which papers of those use it?", "Does it use ImageNet?"):
        assert analyse(question, history, names).restrict == ("cvt",), question


def test_and_another_named_paper_asks_the_same_of_it():
    """"And ConViT?" after "What does CvT propose?" was restricted to CvT and answered about CvT."""
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "What does CvT propose?"},
               {"role": "assistant", "content": "x", "citations": ["cvt"]}]
    q = analyse("And ConViT?", history, names)
    assert q.restrict is None and q.titled == ("convit",) and q.kind == "fact"
    assert analyse("What about ConViT?", history, names).titled == ("convit",)
    assert analyse("And the datasets?", history, names).restrict == ("cvt",)  # no name: still about CvT
    assert analyse("And does it beat ConViT?", history, names).restrict == ("cvt",)  # more than a name


def test_picked_positions_are_each_answered_and_a_greeting_is_no_topic():
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "Which papers add convolutions?"},
               {"role": "assistant", "content": "x", "citations": ["osnet", "cvt", "convit"]}]
    q = analyse("Show me only the first two", history, names)
    assert q.restrict == ("osnet", "cvt") and q.each
    hello = analyse("Hello, which papers study GANs?", None, names)
    assert hello.kind == "list" and "study GANs" in hello.searched and "papers" not in hello.searched


def test_unrestricted_follow_up_searches_both_questions():
    names = NameIndex(PAPERS)
    history = [{"role": "user", "content": "Which papers study speech?"},
               {"role": "assistant", "content": "The corpus does not cover this question."}]
    q = analyse("And which of those use transformers?", history, names)
    assert q.follow_up and q.restrict is None
    assert q.text == "Which papers study speech? use transformers?"  # the pointers name no topic


class _Unsure:
    """A question model that splits a question between two kinds, as the packaged one does on
    wordings far from its examples."""

    def __init__(self, probabilities):
        from rag.question_model import Kind, Prediction

        self.prediction = Prediction(max(probabilities, key=probabilities.get),
                                     {Kind(k): p for k, p in probabilities.items()})
        self.frame = frozenset()

    def predict(self, question):
        return self.prediction

    def topic(self, question):
        return question


def test_an_unsure_limits_reading_answers_every_paper_on_the_topic():
    """A limits answer keeps only papers stating a limitation; when weaknesses are not clearly
    asked for, the topic is answered as an overview (several wordings, one class)."""
    names = NameIndex(PAPERS)
    unsure = _Unsure({"limits": 0.38, "overview": 0.34, "list": 0.28})
    sure = _Unsure({"limits": 0.8, "overview": 0.1, "list": 0.1})
    for question in ("what's known about comparing representations of two networks",
                     "representation similarity between networks: where are we?"):
        assert analyse(question, None, names, model=unsure).kind == "overview"
        assert analyse(question, None, names, model=sure).kind == "limits"


def _unsure_model(probabilities: dict[str, float]):
    """A question model that reads every question with these kind probabilities."""
    import math

    from rag.question_model import QuestionModel

    kinds = list(probabilities)
    return QuestionModel(kinds, {}, {}, [math.log(probabilities[k]) for k in kinds], ())


@pytest.mark.parametrize("question", [
    "the gan survey - which application do they say gains the most?",
    "which pretraining variant came out best?",
    "what do they argue helps most in that review?",
])
def test_an_unsure_superlative_that_names_no_measure_asks_a_fact(question):
    """Class: a superlative compares one measure across papers. When the model is unsure and the
    question names no measure ("which variant came out best"), there is nothing to compare: it
    asks a fact of one paper. A measure named, or a sure model, keeps the comparison."""
    names = NameIndex(PAPERS)
    unsure = _unsure_model({"superlative": 0.45, "fact": 0.3, "how": 0.1, "list": 0.15})
    assert analyse(question, None, names, model=unsure).kind == "fact"
    assert analyse(f"{question} (lowest error rate)", None, names, model=unsure).kind == "superlative"
    sure = _unsure_model({"superlative": 0.8, "fact": 0.1, "how": 0.05, "list": 0.05})
    assert analyse(question, None, names, model=sure).kind == "superlative"


WORD_NAMED = {
    "gist": Paper(paper_id="gist", title="GIST: Generating Image-Specific Text for Fine-grained Object Classification",
                  abstract="We generate text."),
    "points": Paper(paper_id="points", title="POINTS: Improving Your Vision-language Model with Affordable Strategies",
                    abstract="We improve a model."),
    "twins": Paper(paper_id="twins", title="Twins: Revisiting the Design of Spatial Attention in Vision Transformers",
                   abstract="We revisit attention."),
    "hornet": Paper(paper_id="hornet", title="HorNet: Efficient High-Order Spatial Interactions with Recursive Gated "
                    "Convolutions", abstract="We propose HorNet."),
}


@pytest.mark.parametrize(("question", "named"), [
    ("give me the gist of the work on random features", []),
    ("by how many points does the method beat the baseline?", []),
    ("are identical twins hard for face recognition?", []),
    ("How does GIST write image-specific text?", ["gist"]),
    ("what does POINTS improve in a VLM?", ["points"]),
    ("Which attention design does Twins revisit?", ["twins"]),
    ("how does hornet do high-order interactions", ["hornet"]),  # coined (inner capital): any case
])
def test_a_short_name_that_is_an_english_word_names_its_paper_only_when_written_as_a_name(question, named):
    """Class: a paper whose short name is an ordinary word ("GIST", "POINTS", "Twins") is named
    by that word written with a capital, not by the word in a sentence ("the gist of ...")."""
    assert NameIndex(WORD_NAMED).find(question) == named
