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


@pytest.mark.parametrize(("sentence", "metric", "values"), [
    # thousands separators: one count, not two numbers
    ("The dataset consists of 21,866 training images and 1,000 testing images.", None, [21866.0, 1000.0]),
    ("We collect 1,234,567 question-answer pairs.", None, [1234567.0]),
    # magnitudes as letters, glued or spaced, and as words
    ("It offers 15.4M bounding boxes and 375k relationship annotations.", None, [15.4e6, 375e3]),
    ("Our largest model has 1.3B parameters.", "parameters", [1.3e9]),
    ("The small variant has 22.8 M parameters.", "parameters", [22.8e6]),
    ("We pretrain on 4 million images.", None, [4e6]),
    ("Trained on 300 thousand clips.", None, [300e3]),
    # a magnitude glued to the unit it scales; either spelling of the unit is the metric
    ("The backbone costs 4.1 GFLOPs at 224 pixels.", "gflops", [4.1e9]),
    ("The backbone costs 4.1 GFLOPs at 224 pixels.", "flops", [4.1e9]),
    ("The mobile variant needs 600M FLOPs.", "gflops", [600e6]),
    ("It runs at 600 MFLOPs per image.", None, [600e6]),
    # no magnitude: unchanged, and a comma between numbers is no separator
    ("We reach 85.1% top-1 accuracy.", "accuracy", [85.1]),
    ("Scores of 1,2 and 3 are given.", None, [1.0, 3.0]),
])
def test_counts_with_separators_and_magnitudes_are_read_at_their_size(sentence, metric, values):
    """Class: counts written "21,866", "15.4M", "1.3B", "4 million", "4.1 GFLOPs". Read as
    their digits they compared wrongly: "21,866" gave 866, and 1.3B parameters looked fewer
    than 22.8M."""
    assert [r.value for r in numbers.reported(sentence, metric)] == pytest.approx(values)


def test_the_fewest_parameters_are_found_across_magnitudes():
    read = {name: numbers.reported(sentence, "parameters")[0] for name, sentence in [
        ("big", "The model has 1.3B parameters."),
        ("small", "The model has 22.8M parameters."),
        ("mid", "The model has 300 million parameters."),
    ]}
    assert numbers.best(read, numbers.direction("which paper has the fewest parameters?", "parameters")) == "small"
    assert numbers.best(read, numbers.direction("which model has the most parameters?", "parameters")) == "big"


@pytest.mark.parametrize(("question", "things"), [
    ("Which dataset has the most images?", {"imag"}),
    ("which benchmark offers the largest number of annotated bounding boxes", {"annot", "bound", "box"}),
    ("the dataset with the fewest training images?", {"train", "imag"}),
    ("which image dataset is the biggest in number of images", {"imag"}),
    # a compared number that counts nothing
    ("which paper reports the highest value on CIFAR-10?", set()),
    ("best result in the collection?", set()),
])
def test_a_count_superlative_says_what_it_counts(question, things):
    assert numbers.counted(question, None) == {t for w in things for t in terms(w)}


def test_a_named_metric_counts_nothing():
    assert numbers.counted("Which paper reports the lowest error on CIFAR-10?", "error") == set()


@pytest.mark.parametrize(("sentence", "values"), [
    ("We present a dataset of 9.2M images and 30.1M image-level labels.", [9.2e6]),
    ("It holds 21,866 training images and 1,000 testing images.", [21866.0, 1000.0]),
    ("The set contains over 27000 word-images from 12 languages.", [27000.0]),
    ("Trained for 300 epochs on 1.2M images with 95.8% accuracy.", [1.2e6]),
])
def test_only_counts_of_the_things_asked_about_are_compared(sentence, values):
    """Class: a number counts the noun it is followed by (within three words, a hyphenated
    word by its last part): "30.1M image-level labels" are labels, "27000 word-images" images."""
    got = numbers.reported(sentence, None, counting=numbers.counted("which dataset has the most images?", None))
    assert [r.value for r in got] == pytest.approx(values)
