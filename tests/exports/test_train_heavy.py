"""Heavy: the exports fed, unchanged, to the training libraries (``pip install -e '.[train,test]'``).

* ``chat`` trains 2 steps of TRL's ``SFTTrainer`` with a tiny random Qwen2 model built locally on CPU, and renders
  through ``transformers``' ``apply_chat_template`` with the Qwen2.5, Llama-3.1 and Qwen3 templates;
* ``dpo`` and ``kto`` go through ``DPOTrainer`` / ``KTOTrainer`` data preparation (and one training step);
* with trl 1.13 (``pip install 'trl==1.13.*'``; 1.14 removed it), ``trl-stepwise`` trains 2 steps of PRMTrainer.

Tokenizers are trained here on the exported text (``tokenizers``' BPE): nothing is downloaded.

Run:  pip install -e '.[train,test]' && python -m pytest -m heavy tests/exports/test_train_heavy.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trajrec.replay.exports import export

pytestmark = pytest.mark.heavy

TEMPLATES = Path(__file__).parent / "chat_templates"
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>",
            "</tool_call>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "<|eom_id|>", "<|python_tag|>", "<think>", "</think>"]


def _texts(*paths: Path) -> list[str]:
    return [line for p in paths for line in p.read_text().splitlines()]


def tokenizer(texts: list[str], template: str = "qwen2_5") -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with a chat template from the fixtures."""
    pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIALS,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                                eos_token="<|im_end|>", bos_token="<s>")
    fast.chat_template = (TEMPLATES / f"{template}.jinja").read_text()
    return fast


def tiny_model(vocab: int) -> Any:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch").manual_seed(0)
    config = transformers.Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192)
    return transformers.Qwen2ForCausalLM(config)


def load(path: Path, tmp: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp / "hf"))


@pytest.mark.parametrize("template", ["qwen2_5", "llama3_1", "qwen3"])
def test_transformers_renders_arguments_once_unescaped(builtin_run: Path, tmp_path: Path, template: str) -> None:
    export([builtin_run], "chat", tmp_path / "chat.jsonl")
    ds = load(tmp_path / "chat.jsonl", tmp_path)
    tok = tokenizer(_texts(tmp_path / "chat.jsonl"), template)
    n = 0
    for row in ds:
        text = tok.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
        for m in row["messages"]:
            for tc in m.get("tool_calls") or ():
                args = json.dumps(tc["function"]["arguments"], ensure_ascii=False)
                assert f'"arguments": {args}' in text or f'"parameters": {args}' in text
                if tc["function"]["arguments"]:
                    assert json.dumps(args)[1:-1] not in text  # never escaped JSON
                n += 1
    assert n > 20


def test_sft_trains_two_steps_on_the_chat_export(builtin_run: Path, tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    export([builtin_run], "chat", tmp_path / "chat.jsonl")
    ds = load(tmp_path / "chat.jsonl", tmp_path)  # as exported: messages, tools, trajrec
    tok = tokenizer(_texts(tmp_path / "chat.jsonl"))
    args = trl.SFTConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                         max_length=512, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True)
    trainer = trl.SFTTrainer(model=tiny_model(len(tok)), args=args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(x == x and x > 0 for x in losses) and result.training_loss > 0


def test_dpo_and_kto_data_preparation_take_the_exports(builtin_run: Path, tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    export([builtin_run], "dpo", tmp_path / "dpo.jsonl")
    export([builtin_run], "kto", tmp_path / "kto.jsonl")
    tok = tokenizer(_texts(tmp_path / "dpo.jsonl", tmp_path / "kto.jsonl"))
    common = dict(per_device_train_batch_size=2, max_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                  max_length=4096)
    dpo_ds = load(tmp_path / "dpo.jsonl", tmp_path / "d")
    # The reference model is passed: DPO would otherwise load one by the policy's hub id (it has none).
    dpo = trl.DPOTrainer(model=tiny_model(len(tok)), ref_model=tiny_model(len(tok)),
                         args=trl.DPOConfig(output_dir=str(tmp_path / "dpo"), **common),
                         train_dataset=dpo_ds, processing_class=tok)
    prepared = dpo.train_dataset
    # DPO drops rows longer than max_length (at 512 tokens of this small-vocabulary tokenizer it kept none).
    assert prepared.num_rows == dpo_ds.num_rows
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(prepared.column_names)
    chosen = tok.decode(prepared[0]["chosen_ids"])
    assert '"arguments": {' in chosen and '\\"' not in chosen  # the call rendered once, as an object
    dpo.train()
    assert dpo.state.global_step == 1
    kto_ds = load(tmp_path / "kto.jsonl", tmp_path / "k")
    kto = trl.KTOTrainer(model=tiny_model(len(tok)), ref_model=tiny_model(len(tok)),
                         args=trl.KTOConfig(output_dir=str(tmp_path / "kto"), **common),
                         train_dataset=kto_ds, processing_class=tok)
    assert kto.train_dataset.num_rows == kto_ds.num_rows
    kto.train()
    assert kto.state.global_step == 1


def test_prm_trainer_of_trl_1_13_takes_the_stepwise_export(builtin_run: Path, tmp_path: Path) -> None:
    """trl <= 1.13 only (1.14 removed PRMTrainer): ``pip install 'trl==1.13.*'`` in a venv of its own."""
    pytest.importorskip("trl")
    prm = pytest.importorskip("trl.experimental.prm", reason="trl >= 1.14 has no PRMTrainer; use trl 1.13")
    transformers = pytest.importorskip("transformers")
    export([builtin_run], "trl-stepwise", tmp_path / "prm.jsonl")
    ds = load(tmp_path / "prm.jsonl", tmp_path)
    tok = tokenizer(_texts(tmp_path / "prm.jsonl"))
    config = prm.PRMConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                           report_to=[], save_strategy="no", use_cpu=True, max_length=None,
                           max_completion_length=None)
    # One label per completion: no completion holds the step separator, so the trainer sees as many steps.
    for row in ds:
        out = prm.PRMTrainer.tokenize_row(row, tok, config.step_separator, None, None, False, False)
        assert sum(1 for x in out["labels"] if x != -100) == len(row["completions"]) == len(row["labels"])
    pytest.importorskip("torch").manual_seed(0)
    model = transformers.Qwen2ForTokenClassification(transformers.Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=8192, num_labels=2, pad_token_id=tok.pad_token_id))
    trainer = prm.PRMTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    trainer.train()
    assert trainer.state.global_step == 2
