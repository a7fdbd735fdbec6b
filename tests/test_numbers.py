"""Numbers read with their metric and benchmark (rag/numbers.py): pure, no index.

Abstracts report one metric for several benchmarks in one sentence, and state a qualified
metric bare; these are classes of sentences, each checked in several forms."""

from __future__ import annotations

import pytest

from rag import numbers
from rag.text import terms


def about(*names: str):
    anchors = {t for name in names for t in terms(name)}
    return lambda clause: bool(anchors & set(terms(clause)))


@pytest.mark.parametrize("sentence, benchmark, metric, values", [
    # the value for the asked benchmark comes after another benchmark's, in the same sentence
    ("Our model gets 58.0% PQ on COCO, Cityscapes val set with 68.4% PQ, 44.0% AP, and 83.5% mIoU, "
     "and ADE20K val set with 50.9% PQ and 55.2% mIoU.", "ADE20K", "miou", [55.2]),
    ("Our models achieve an ImageNet accuracy of 88.0%, ADE20K mIoU of 55.6%, and COCO box AP of 56.4%.",
     "ADE20K", "miou", [55.6]),
    # the value before the benchmark's name, the next clause about another benchmark
    ("Notably, ViT-CoMer-L achieves 64.3% AP on COCO val2017, and 62.1% mIoU on ADE20K val.",
     "ADE20K", "miou", [62.1]),
    # a model named as the subject of a later clause is no other benchmark
    ("On CIFAR-10 itself, NASNet achieves 2.4% error rate, which is state-of-the-art.", "CIFAR-10", "error", [2.4]),
    ("Taking DeepLabV3+ with a ResNet-101 backbone, we receive a 76% mIoU score on the Pascal VOC 2012 dataset.",
     "PASCAL VOC", "miou", [76.0]),
])
def test_a_value_counts_for_the_benchmark_it_is_stated_for(sentence, benchmark, metric, values):
    assert [r.value for r in numbers.reported(sentence, metric, about(benchmark))] == values


def test_a_sentence_about_other_benchmarks_reports_nothing_for_this_one():
    sentence = "We obtain 83.5% mIoU on Cityscapes and 47.1% mIoU on PASCAL-Context."
    assert numbers.reported(sentence, "miou", about("ADE20K")) == []


@pytest.mark.parametrize("sentence, value", [
    ("ViT-CoMer-L achieves 64.3% AP on COCO val2017.", 64.3),  # box AP is the default AP
    ("We reach 52.7 AP with a ResNet-50.", 52.7),
])
def test_a_qualified_metric_stated_bare_counts(sentence, value):
    assert [r.value for r in numbers.reported(sentence, "box ap")] == [value]


def test_a_metric_of_several_words_stated_by_its_metric_word_counts():
    sentence = "obtaining top-1 error of 3.6% on CIFAR-10 and 20.3% when transferred to ImageNet"
    assert [r.value for r in numbers.reported(sentence, "error rate", about("CIFAR-10"))] == [3.6]


def test_another_qualifier_is_another_metric():
    assert numbers.reported("It reaches 45.1 mask AP on COCO.", "box ap") == []


@pytest.mark.parametrize(("sentence", "values"), [
    ("We outperform the state of the art in accuracy by +26.6% on CIFAR10.", []),
    ("It improves the top-1 accuracy by +2.1% over the baseline.", []),
    ("Accuracy changes by −0.4% when the prior is removed.", []),
    ("Our model reaches 94.1% accuracy, +3.2% over the baseline.", [94.1]),
])
def test_a_signed_number_is_a_gain_not_the_value_reached(sentence, values):
    """Class: "+26.6%" says how much better than another method, not the accuracy reached, so a
    superlative never compares it with values."""
    assert [r.value for r in numbers.reported(sentence, "accuracy")] == values


@pytest.mark.parametrize(("question", "benchmarks"), [
    ("Which paper reports the lowest top-1 error on CIFAR-10?", ["CIFAR-10"]),
    ("top reported mAP on COCO among these papers?", ["COCO"]),
    ("best accuracy anyone gets on Kinetics-400", ["Kinetics-400"]),
    ("which pretraining variant came out best?", []),
])
def test_the_benchmark_a_superlative_names_is_not_its_metric(question, benchmarks):
    assert numbers.benchmarks_in(question) == benchmarks
