"""Each kind of question gets the answer its users expect, over the real bundled index, whatever
the wording: several wordings per class (none from the eval sets or the training examples).

These check the shape of the answer and the evidence behind it, not exact texts: an overview
cites several papers on the topic, a yes/no question opens with "Yes" or "No", a how-it-works
question about a named method quotes that method's paper, a typo does not change the answer.
"""

from __future__ import annotations

import re

import pytest

from rag.extractive import _LIMITATION
from rag.models import Source
from rag.text import terms

LOFTR = "LoFTR: Detector-Free Local Feature Matching with Transformers"
YOLO = "You Only Look Once: Unified, Real-Time Object Detection"
GRAD_CAM = "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization"


def _about(pipeline, citation, pattern: str) -> bool:
    paper = pipeline.index.paper(citation.paper_id)
    return re.search(pattern, f"{paper.title} {paper.abstract}", re.I) is not None


@pytest.mark.parametrize("question", [
    "Give me an overview of diffusion models for image generation",
    "summarise the papers on diffusion-based image synthesis",
    "I'm starting out with diffusion models, what should I read?",
])
def test_an_overview_cites_every_paper_on_the_topic(pipeline, question):
    answer = pipeline.answer(question)
    assert not answer.abstained and len(answer.citations) >= 3, answer.text
    on_topic = [c for c in answer.citations if _about(pipeline, c, r"diffusion")]
    assert len(on_topic) >= 0.8 * len(answer.citations), answer.text
    assert re.match(r"\d+ paper", answer.text)  # the lead line counts them


@pytest.mark.parametrize("question", [
    "Is there any paper on feature matching with transformers?",
    "has anyone used transformers for local feature matching?",
    "do you have anything on detector-free feature matching?",
])
def test_a_yes_no_question_about_a_covered_topic_says_yes_with_the_papers(pipeline, question):
    answer = pipeline.answer(question)
    assert answer.text.startswith("Yes"), answer.text
    assert LOFTR in [c.title for c in answer.citations]


@pytest.mark.parametrize(("question", "paper"), [
    ("Is there a paper on chess?", r"chess"),
    ("do you have anything about chromosome karyotyping?", r"chromosome"),
    ("is there any paper on detecting transaction fraud?", r"fraud"),
    ("has anybody studied fraud detection?", r"fraud"),
])
def test_a_yes_no_question_one_paper_answers_cites_that_paper_alone(pipeline, question, paper):
    """The first pass finds one paper far above the rest; pseudo-relevance feedback would add
    papers that merely resemble it (other classifiers, other sequence models)."""
    answer = pipeline.answer(question)
    assert answer.text.startswith("Yes"), answer.text
    assert len(answer.citations) == 1 and _about(pipeline, answer.citations[0], paper), answer.text


@pytest.mark.parametrize(("question", "paper"), [
    ("Which papers classify chromosome images?", r"chromosome"),
    ("what do the papers say about transaction fraud?", r"fraud"),
    ("summarize the research on karyotyping", r"chromosome"),
])
def test_a_topic_one_paper_stands_out_for_is_answered_from_that_paper(pipeline, question, paper):
    """However confidently the question reads as a list or an overview, when one paper stands
    far above the rest the answer is that paper's, not a list padded with papers that merely
    resemble it."""
    answer = pipeline.answer(question)
    assert not answer.abstained and answer.citations, answer.text
    assert {c.paper_id for c in answer.citations} == {answer.citations[0].paper_id}, answer.text
    assert _about(pipeline, answer.citations[0], paper), answer.text


@pytest.mark.parametrize(("question", "paper"), [
    ("is there a paper that swaps the dot product in attention for a different similarity function?",
     r"^Neural Attention"),
    ("does any work train image classifiers on billions of social media images with hashtags?",
     r"^Exploring the Limits of Weakly Supervised"),
    ("did anyone build a benchmark of word images in Indian scripts?", r"^IndicSTR12"),
])
def test_a_narrow_yes_no_question_names_only_the_close_matches(pipeline, question, paper):
    """"Yes: N papers do" claims each named paper does it. When the first pass peaks, the
    question is narrow, and papers sharing only its broad words (other attention variants, other
    web-scale datasets, other text-in-image papers: 6-10 citations with the list's cut-off) are
    not named; a broad yes/no keeps the list (next test)."""
    answer = pipeline.answer(question)
    assert answer.text.startswith("Yes"), answer.text
    assert any(re.search(paper, c.title) for c in answer.citations), answer.text
    assert len({c.paper_id for c in answer.citations}) <= 3, answer.text


@pytest.mark.parametrize("question", ["has anyone worked on network pruning?",
                                      "Is there any paper on self-supervised learning?"])
def test_a_yes_no_question_many_papers_answer_lists_them(pipeline, question):
    answer = pipeline.answer(question)
    assert answer.text.startswith("Yes") and len(answer.citations) >= 3, answer.text


@pytest.mark.parametrize("question", [
    "Is there any paper about protein structure prediction?",
    "has anyone studied stock price forecasting?",
])
def test_a_yes_no_question_about_an_absent_topic_says_no_and_cites_nothing(pipeline, question):
    answer = pipeline.answer(question)
    assert answer.abstained and not answer.citations and answer.text.startswith("No"), answer.text


@pytest.mark.parametrize(("question", "topic"), [
    ("yo, real quick: gimme the lowdown on diffusion models for images pls", r"diffusion"),
    ("noob here, any good refs on knowledge distillation? asking for my advisor", r"distill"),
    ("tbh i dunno where to begin with contrastive learning, cheat sheet of the papers?", r"contrastive"),
])
def test_chat_words_around_a_covered_topic_do_not_hide_it(pipeline, question, topic):
    """Words people chat in ("lowdown", "noob", "refs", "dunno") are no topic the corpus
    lacks: the question is answered from the papers on its topic, not declined."""
    answer = pipeline.answer(question)
    assert not answer.abstained and answer.citations, answer.text
    assert all(_about(pipeline, c, topic) for c in answer.citations[:3]), answer.text


@pytest.mark.parametrize("question", [
    "yo, real quick: gimme the lowdown on protein structure prediction pls",
    "noob here, any good refs on stock price forecasting? asking for my advisor",
])
def test_chat_words_around_an_absent_topic_still_decline(pipeline, question):
    assert pipeline.answer(question).abstained


@pytest.mark.parametrize("question", ["How does LoFTR work?", "explain LoFTR", "what's the idea behind LoFTR?"])
def test_how_a_named_method_works_is_told_from_its_paper_by_its_mechanism(pipeline, question):
    answer = pipeline.answer(question)
    assert [c.title for c in answer.citations] == [LOFTR]
    # The mechanism (coarse-to-fine matching with self and cross attention), not the results.
    assert "coarse level" in answer.text or "cross attention" in answer.text, answer.text


@pytest.mark.parametrize(("question", "mechanism", "scene"), [
    ("How does Eigen-CAM work?", "principle components", "Making sense of such complex models"),
    ("How does CatGCN work?", "interaction modeling", "Recent studies on Graph Convolutional Networks"),
    ("How does kMaX-DeepLab work?", "clustering process", "Originated from Natural Language Processing"),
    ("how does the parallel transformer layer from the neural ODE view work?", "parallel to each other",
     "As the transformer layers use residual connections"),
])
def test_how_a_method_works_is_told_after_the_abstracts_scene_setting(pipeline, question, mechanism, scene):
    """Abstracts open with the field's background ("Making sense of such complex models ...
    remains challenging"), which shares the question's words; the mechanism is stated once the
    authors speak ("The proposed Eigen-CAM computes ..."). The sentences before that score less."""
    answer = pipeline.answer(question)
    assert not answer.abstained and mechanism in answer.text, answer.text
    assert scene not in answer.text, answer.text


@pytest.mark.parametrize("question", ["Which paper introduced Grad-CAM?", "Who proposed Grad-CAM?",
                                      "where does Grad-CAM come from?"])
def test_origin_questions_name_the_introducing_paper(pipeline, question):
    assert pipeline.answer(question).citations[0].title == GRAD_CAM


@pytest.mark.parametrize("question", ["Which paper first proposed YOLO?", "who introduced YOLO",
                                      "where does the name YOLO come from?", "who came up with YOLO"])
def test_origin_of_an_acronym_is_the_paper_that_spells_it_out(pipeline, question):
    """"Mamba YOLO" proposes a variant named with the acronym and ranks high for it; the paper
    that spells YOLO out ("You Only Look Once") introduced it."""
    assert pipeline.answer(question).citations[0].title == YOLO


def test_typos_and_abbreviations_get_the_answer_of_the_right_spelling(pipeline):
    right = pipeline.answer("transformer based local feature matching")
    for typed in ("tranformer based local feature matching", "transformer based local featur matching"):
        answer = pipeline.answer(typed)
        assert not answer.abstained and [c.paper_id for c in answer.citations] == \
            [c.paper_id for c in right.citations], typed
    assert not pipeline.answer("video obj segmentaion w memory networks").abstained


@pytest.mark.parametrize(("typed", "written"), [
    ("fewshot classification with clip", "few-shot classification with clip"),
    ("zeroshot semantic segmentation", "zero-shot semantic segmentation"),
    ("superresolution transformers", "super-resolution transformers"),
])
def test_a_compound_typed_closed_gets_the_answer_of_the_abstracts_spelling(pipeline, typed, written):
    """As one word the compound is a term no abstract holds: searched and judged for coverage
    as typed, it would read as a topic the corpus lacks."""
    right = pipeline.answer(written)
    answer = pipeline.answer(typed)
    assert not answer.abstained and answer.citations
    assert [c.paper_id for c in answer.citations] == [c.paper_id for c in right.citations]


@pytest.mark.parametrize("question", ["Which paper reports the lowest error on CIFAR-10?",
                                      "lowest CIFAR-10 error rate in the collection?"])
def test_a_superlative_compares_the_reported_numbers(pipeline, question):
    answer = pipeline.answer(question)
    assert "reports the lowest error" in answer.text, answer.text
    values = [float(re.search(r"(\d+(?:\.\d+)?)\s*%", c.quote).group(1)) for c in answer.citations]
    assert len(values) >= 2 and values[0] == min(values)  # the best first, the others it was compared with
    assert all("CIFAR-10" in c.quote for c in answer.citations)


@pytest.mark.parametrize("question", ["best mIoU on ADE20K in the collection?",
                                      "which segmentation model reports the highest ADE20K mIoU"])
def test_a_superlative_compares_the_values_stated_for_the_asked_benchmark(pipeline, question):
    """Abstracts state mIoU for Cityscapes and ADE20K in one sentence: only ADE20K's counts."""
    answer = pipeline.answer(question)
    assert "reports the highest miou" in answer.text.lower(), answer.text
    assert answer.citations[0].title.startswith("ViT-CoMer"), answer.text
    assert "83.5%" not in answer.text  # kMaX-DeepLab's Cityscapes mIoU, in its ADE20K sentence


def _count(written: str) -> float:
    """A count as the test reads it: "21,866" -> 21866, "15.4M" -> 15.4e6, "4 million" -> 4e6."""
    found = re.fullmatch(r"([\d,]+(?:\.\d+)?)\s*([kKMB]|thousand|million|billion)?", written.strip())
    assert found, written
    scale = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}
    return float(found.group(1).replace(",", "")) * scale.get((found.group(2) or "").lower(), 1.0)


@pytest.mark.parametrize("question", ["which dataset has the most images?",
                                      "which of these datasets contains the largest number of images?",
                                      "which image dataset is the biggest in number of images"])
def test_a_count_superlative_compares_counts_of_what_it_names(pipeline, question):
    """Class: "the most <things>", with no metric, compares the counts of those things, read at
    their size. Before, any number near the question's words competed, read as its digits:
    "859,000 images" gave 859, and a "95.8%" accuracy beat "15 images"."""
    answer = pipeline.answer(question)
    assert "reports the highest" in answer.text, answer.text
    compared = re.findall(r"^\d+\. \*\*.+?\*\* \[(\d+)\]: (.+)$", answer.text, re.M)
    assert len(compared) >= 2, answer.text
    quotes = {c.n: c.quote for c in answer.citations}
    for n, written in compared:  # each value counts images in the sentence it is quoted from
        counts_images = rf"{re.escape(written)}(\s+[\w-]+){{0,2}}\s+([\w]+-)?images\b"
        assert re.search(counts_images, quotes[int(n)]), (written, quotes[int(n)])
    values = [_count(written) for _, written in compared]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


@pytest.mark.parametrize("question", ["what benchmarks are semantic segmentation methods tested on?",
                                      "which datasets do the semantic segmentation papers evaluate on",
                                      "semantic segmentation benchmarks used in these papers"])
def test_where_papers_are_evaluated_is_quoted_for_each(pipeline, question):
    """A question about where a topic's papers are evaluated quotes, for each paper, the
    sentence naming its benchmarks: FCN's "segmentation of PASCAL VOC ...", not its backbones."""
    answer = pipeline.answer(question)
    fcn = [c for c in answer.citations if c.title == "Fully Convolutional Networks for Semantic Segmentation"]
    assert fcn and all("PASCAL VOC" in c.quote for c in fcn), answer.text


def test_names_evaluation_tells_benchmarks_from_backbones():
    from rag.extractive import names_evaluation

    assert names_evaluation("It achieves improved segmentation of PASCAL VOC, NYUDv2 and SIFT Flow.")
    assert names_evaluation("Experiments on three public datasets show gains.")
    assert not names_evaluation("We adapt classification networks (AlexNet, the VGG net, and GoogLeNet).")


@pytest.mark.parametrize("question", ["What are the weaknesses of vision transformers according to the papers?",
                                      "limitations of ViTs on small datasets?"])
def test_limits_quote_the_sentences_that_state_a_limitation(pipeline, question):
    answer = pipeline.answer(question)
    assert len(answer.citations) >= 2
    stating = [c for c in answer.citations if _LIMITATION.search(c.quote)]
    assert len(stating) >= 0.8 * len(answer.citations), answer.text


def test_a_greeting_before_a_question_is_no_topic(pipeline):
    answer = pipeline.answer("Hello, which papers study GANs?")
    assert not answer.abstained and len(answer.citations) >= 2


RESNEXT = "Aggregated Residual Transformations for Deep Neural Networks"
UNIFIED_EMBEDDING = "Unified Embedding: Battle-Tested Feature Representations for Web-Scale ML Systems"
NETWORK_FEATURE_COMPLEXITY = ("Going Beyond Neural Network Feature Similarity: The Network Feature Complexity and "
                              "Its Interpretation Using Category Theory")


@pytest.mark.parametrize(("question", "introducing"), [
    ("who introduced cardinality?", RESNEXT),  # "a new dimension, which we call cardinality"
    ("which paper coined cardinality as a dimension of network design?", RESNEXT),
    ("where do functionally equivalent features come from?", NETWORK_FEATURE_COMPLEXITY),  # "what we call ..."
    ("who first defined functionally equivalent features", NETWORK_FEATURE_COMPLEXITY),
])
def test_origin_reads_first_person_definitions(pipeline, question, introducing):
    """Class: a paper defines its name in the first person ("which we call X", "we refer to our
    method as X") in a sentence that does not say "we propose". Asked with the other paper
    ranked first (Unified Embedding mentions "high-cardinality features" and features), the
    answer is the paper that defines the name, not the first-ranked one."""
    assert _origin_among(pipeline, question, (UNIFIED_EMBEDDING, introducing)) == introducing


def _origin_among(pipeline, question: str, titles: tuple[str, ...]) -> str:
    """The paper an origin answer names when retrieval ranked `titles` in this order."""
    by_title = {p.title: p for p in pipeline.index.papers.values()}
    pool = [Source(paper=by_title[t], score=1.0 - n / 10) for n, t in enumerate(titles)]
    return pipeline.extractive(question, pool, "origin").citations[0].title


MEDICAL_SSM_SURVEY = "Computation-Efficient Era: A Comprehensive Survey of State Space Models in Medical Image Analysis"
XFMAMBA = "XFMamba: Cross-Fusion Mamba for Multi-View Medical Image Classification"


@pytest.mark.parametrize("question", [
    "who first categorised Mamba models for medical imaging by application?",
    "which paper offered a structured classification of Mamba models in the medical field?",
    "who came up with a categorization scheme for medical Mamba models?",
])
def test_origin_of_a_taxonomy_is_the_survey_that_puts_it_forward(pipeline, question):
    """Class: what a survey or analysis puts forward ("we offer a structured classification",
    "we provide a taxonomy", "we define the problem as ...") is introduced there, though it says
    no "we propose"; a model ranked above it that proposes a Mamba variant does not."""
    assert _origin_among(pipeline, question, (XFMAMBA, MEDICAL_SSM_SURVEY)) == MEDICAL_SSM_SURVEY


@pytest.mark.parametrize(("sentence", "states"), [
    ("While many methods exist for defending against attacks, they do not generalise across a range of attacks.", True),
    ("Despite their effectiveness, the existing pooling strategies do not consider the channel-wise difference.", True),
    ("LVLMs attend to global image features, while failing to capture prompt-relevant local features.", True),
    ("Moreover, these methods ignore the fine-grained dependencies among skeleton joints.", True),
    ("By only using the category name, they neglect the rich context that language affords.", True),
    ("We release our code and data at https://serre-lab.github.io/Harmonization to help the field.", False),
    ("We propose a detector that runs in real time on a phone.", False),
])
def test_a_limitation_is_also_what_methods_do_not_do(sentence, states):
    """Class: limitations stated by negation ("do not generalise", "ignore", "fail to"), which a
    weaknesses answer quotes and keeps the paper for; words that merely contain such a stem do
    not count."""
    assert bool(_LIMITATION.search(sentence)) is states


@pytest.mark.parametrize(("question", "benchmark"), [
    ("Which paper reports the highest accuracy on CIFAR10?", "CIFAR10"),
    ("lowest error on MNIST reported here?", "MNIST"),
    ("best top-1 accuracy anyone reports on Tiny ImageNet", "Tiny ImageNet"),
    ("which paper has the best AP on COCO?", "COCO"),
])
def test_a_superlative_on_a_named_benchmark_weighs_every_paper_that_names_it(pipeline, question, benchmark):
    """Class: the best number on a benchmark may sit in a paper that names the benchmark once and
    that the question's other words ("top accuracy") rank low: every paper naming it competes."""
    evidence = pipeline.gather(question, None, pipeline.settings)
    naming = set(pipeline.index.lexical(terms(benchmark), 15))
    assert naming <= {src.paper_id for src in evidence.used}


@pytest.mark.parametrize("question", ["which method gets the highest accuracy on CIFAR10?",
                                      "best accuracy reported on CIFAR10 here?"])
def test_a_superlative_with_no_comparable_number_lists_the_benchmark_papers(pipeline, question):
    """No abstract states an accuracy level on CIFAR10 (SCAN's "+26.6% on CIFAR10" is a gain over
    other methods): with no value to compare, the answer lists the papers on the named
    benchmark, not the whole pool of candidates a comparison draws on."""
    answer = pipeline.answer(question)
    assert "reports the highest" not in answer.text, answer.text
    assert 3 <= len(answer.citations) < 10, answer.text
    assert all(_about(pipeline, c, r"cifar-?10") for c in answer.citations), answer.text
