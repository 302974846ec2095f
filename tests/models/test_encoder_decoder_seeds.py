"""The seed documents' EncoderDecoderModel examples, as written, warm-starting from the MiniLM BERT checkpoint
(the seeds use bert-base / bert-large from the hub; this is the BERT checkpoint available offline)."""
import pytest
import torch
import transformers as T

from parity import assert_close
from warmstart import (BertGenerationDecoder, BertGenerationEncoder, BertTokenizer, EncoderDecoderConfig,
                       EncoderDecoderModel)

ARTICLE = ("The tower is 324 metres (1,063 ft) tall, about the same height as an 81-storey building, and the tallest "
           "structure in Paris. Its base is square, measuring 125 metres (410 ft) on each side.")
SUMMARY = "the eiffel tower is the tallest structure in paris. its base is square."


def test_bert_generation_bert2bert_example(minilm_dir):
    # 002_*: BertGenerationEncoder/Decoder from a plain BERT checkpoint, combined, trained one step.
    encoder = BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102)
    decoder = BertGenerationDecoder.from_pretrained(
        minilm_dir, add_cross_attention=True, is_decoder=True, bos_token_id=101, eos_token_id=102
    )
    bert2bert = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    input_ids = tokenizer(
        "This is a long article to summarize", add_special_tokens=False, return_tensors="pt"
    ).input_ids
    labels = tokenizer("This is a short summary", return_tensors="pt").input_ids
    loss = bert2bert(input_ids=input_ids, decoder_input_ids=labels, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    layer = bert2bert.decoder.bert.encoder.layer[0]
    assert layer.cross_attn.q.weight.grad is not None and layer.attn.qkv.weight.grad is not None
    assert bert2bert.encoder.embeddings.word_embeddings.weight.grad is not None

    # The encoder half is transformers' BertGenerationEncoder on the same weights.
    ref = T.BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102).eval()
    with torch.no_grad():
        assert_close(bert2bert.encoder(input_ids).last_hidden_state, ref(input_ids).last_hidden_state, "encoder")


def test_training_example_and_save_load_match_transformers(minilm_dir, tmp_path):
    # 004_*, "training": labels alone make the decoder inputs; then save, reload, and hand to transformers.
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    input_ids = tokenizer(ARTICLE, return_tensors="pt").input_ids
    labels = tokenizer(SUMMARY, return_tensors="pt").input_ids
    outputs = model(input_ids=input_ids, labels=labels)
    loss, logits = outputs.loss, outputs.logits
    loss.backward()
    assert logits.shape == (1, labels.shape[1], 30522) and torch.isfinite(loss)

    model.save_pretrained(tmp_path / "bert2bert")
    model = EncoderDecoderModel.from_pretrained(tmp_path / "bert2bert")
    hf = T.EncoderDecoderModel.from_pretrained(tmp_path / "bert2bert").eval()
    with torch.no_grad():
        again = model(input_ids=input_ids, labels=labels)
        ref = hf(input_ids=input_ids, labels=labels)
    assert_close(again.loss, loss.detach(), "loss after save/load")
    assert_close(ref.loss, again.loss, "transformers on our save")
    assert_close(ref.logits, again.logits, "logits")


@pytest.mark.slow
def test_config_example_with_bert_base_sizes(tmp_path):
    # 004_*, "EncoderDecoderConfig": random bert-base halves, flags, save and reload with the config.
    from warmstart import BertConfig

    config_encoder = BertConfig()
    config_decoder = BertConfig()
    config = EncoderDecoderConfig.from_encoder_decoder_configs(config_encoder, config_decoder)
    model = EncoderDecoderModel(config=config)
    config_encoder = model.config.encoder
    config_decoder = model.config.decoder
    config_decoder.is_decoder = True
    config_decoder.add_cross_attention = True
    model.save_pretrained(tmp_path / "my-model")
    encoder_decoder_config = EncoderDecoderConfig.from_pretrained(tmp_path / "my-model")
    model2 = EncoderDecoderModel.from_pretrained(tmp_path / "my-model", config=encoder_decoder_config)
    assert model2.config.decoder.add_cross_attention and model2.config.encoder.hidden_size == 768
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), name
