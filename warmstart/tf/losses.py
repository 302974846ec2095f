"""v4's TF losses, so ``labels`` give what transformers' TF heads gave (shapes included).

Token-level heads (masked LM, causal LM, token classification, pre-training) return the mean over labels that are
not -100 as a (1,) tensor; per-example heads (sequence classification, multiple choice, question answering, next
sentence) return one loss per example, (B,), which Keras' ``fit`` then averages. The means equal our PyTorch
heads' losses. Computed in float32 with ``sparse_softmax_cross_entropy_with_logits`` (labels of -100 are clipped
to 0 before it and masked after, as the op refuses negative labels).
"""
from __future__ import annotations

from .backend import tf

__all__ = ["token_loss", "shifted_lm_loss", "example_loss", "sequence_classification_loss", "question_answering_loss",
           "next_sentence_loss", "pretraining_loss", "IGNORE_INDEX"]

IGNORE_INDEX = -100


def _masked(labels, logits):
    """(per-position cross-entropy with ignored positions zeroed, the 0/1 mask), both flat."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1, tf.shape(logits)[-1]])
    mask = tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.nn.relu(labels), logits=logits)
    return ce * mask, mask


def token_loss(labels, logits):
    """Mean cross-entropy over the labels that are not -100, shape (1,) (NaN when every label is -100, as torch)."""
    ce, mask = _masked(labels, logits)
    return tf.reshape(tf.reduce_sum(ce) / tf.reduce_sum(mask), (1,))


def shifted_lm_loss(labels, logits):
    """Position t scored against label t+1 (labels are given unshifted, as v4's LM heads take them)."""
    return token_loss(labels[:, 1:], logits[:, :-1])


def example_loss(labels, logits):
    """Cross-entropy per example, (B,)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                          logits=tf.cast(logits, tf.float32))


def sequence_classification_loss(config, labels, logits):
    """One label per example: MSE when there is one output (regression), else cross-entropy; with
    ``problem_type="multi_label_classification"`` (beyond v4's TF heads, as the PyTorch ones) a float target per
    label and binary cross-entropy. (B,)."""
    logits = tf.cast(logits, tf.float32)
    if config.problem_type == "multi_label_classification":
        y = tf.cast(labels, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_mean(bce, axis=-1)
    if config.num_labels == 1 or config.problem_type == "regression":
        y = tf.cast(labels, tf.float32)
        y = tf.reshape(y, tf.shape(logits)) if config.num_labels == 1 else y
        return tf.reduce_mean(tf.square(logits - y), axis=-1)
    return example_loss(labels, logits)


def question_answering_loss(start_positions, end_positions, start_logits, end_logits):
    """The mean of the start and end cross-entropies, per example (B,)."""
    return (example_loss(start_positions, start_logits) + example_loss(end_positions, end_logits)) / 2.0


def next_sentence_loss(labels, logits):
    """Per example (B,), zero where the label is -100 (v4)."""
    ce, _ = _masked(labels, logits)
    return ce


def pretraining_loss(labels, next_sentence_label, prediction_logits, seq_relationship_logits):
    """Masked-LM mean + next-sentence mean over the labels that are not -100, (1,)."""
    lm, lm_mask = _masked(labels, prediction_logits)
    ns, ns_mask = _masked(next_sentence_label, seq_relationship_logits)
    total = tf.reduce_sum(lm) / tf.reduce_sum(lm_mask) + tf.reduce_sum(ns) / tf.reduce_sum(ns_mask)
    return tf.reshape(total, (1,))
