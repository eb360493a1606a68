"""Parsers for each upstream file format, producing records in the pipeline's one schema.

Normalized record: id (stable: dataset name + index in the upstream file), dataset, instruction, input,
output (target response for training sets; upstream reference text, possibly empty, for evaluation sets),
answer (gold, as a string), answer_type.
"""
from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Callable

from pipeline_lib.catalog.answers import ANSWER_TYPES, AUTO, get_type, infer_type
from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.runtime.files import parse_jsonl


class DataError(ValueError):
    """A data file does not have the expected format; the message names the file, item and field."""


def read_utf8(path: Path) -> str:
    """A data file's text; a file that is not UTF-8, or begins with a byte-order mark, is refused naming the file,
    the line and the byte (a bare UnicodeDecodeError names neither)."""
    raw = Path(path).read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raise DataError(f"{path}:1: begins with a UTF-8 byte-order mark (BOM); save the file as UTF-8 without one")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}, e.g. Latin-1 or "
                        f"Windows-1252 text); convert the file to UTF-8") from e


def _read_json_list(path: Path) -> list:
    try:
        data = json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno} ({e.msg})") from e
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    return data


def _read_jsonl(path: Path) -> list:
    return parse_jsonl(read_utf8(path), path, DataError)


def field_of(path, index, item, key, types):
    if not isinstance(item, dict):
        raise DataError(f"{path}: item {index}: expected an object, got {type(item).__name__}")
    if key not in item:
        raise DataError(f"{path}: item {index}: missing field {key!r}")
    value = item[key]
    if not isinstance(value, types) or isinstance(value, bool):
        names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(f"{path}: item {index}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def format_number(value: float) -> str:
    """2.0 -> '2', 0.5 -> '0.5': how a gold number reads in a response."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def gold_answer(path, index, spec: DatasetSpec, raw) -> tuple[str, str]:
    """(gold answer, its answer type): the set's type, or under `auto` the type the gold answer has."""
    gold = str(raw).strip()
    if not gold:
        raise DataError(f"{path}: item {index}: field 'answer' is empty")
    if spec.answer_type == AUTO:
        answer_type = infer_type(gold) or infer_type(gold.replace(",", ""))
        if answer_type is None:
            kinds = "; ".join(t.expected() for t in ANSWER_TYPES.values())
            raise DataError(f"{path}: item {index}: field 'answer' should be {kinds}, got {raw!r}")
    else:
        answer_type = get_type(spec.answer_type)
    if answer_type.numeric:
        gold = gold.replace(",", "")
    if not answer_type.valid_gold(gold):
        raise DataError(f"{path}: item {index}: field 'answer' should be {answer_type.expected()}, got {raw!r}")
    return gold, answer_type.name


def normalized_record(spec, index, instruction, input_, output, answer: tuple[str, str]) -> dict:
    gold, answer_type = answer
    return {"id": f"{spec.name}-{index:05d}", "dataset": spec.name, "instruction": instruction, "input": input_,
            "output": output, "answer": gold, "answer_type": answer_type}


def load_llm_adapters(path, spec: DatasetSpec) -> list[dict]:
    """LLM-Adapters files: [{instruction, input, output, answer}], optionally with a unique `id` per item.
    Items with an empty `output` are kept here (they count for contamination) and dropped from training
    at selection (upstream math_data.json has 3)."""
    records, seen = [], {}
    for i, item in enumerate(_read_json_list(path)):
        instruction = field_of(path, i, item, "instruction", str)
        if not instruction.strip():
            raise DataError(f"{path}: item {i}: field 'instruction' is empty")
        output = field_of(path, i, item, "output", str)
        answer = gold_answer(path, i, spec, field_of(path, i, item, "answer", (str, int, float)))
        input_ = field_of(path, i, item, "input", str)
        if "id" in item:
            key = str(field_of(path, i, item, "id", (str, int)))
            if key in seen:
                raise DataError(f"{path}: item {i}: field 'id' {key!r} duplicates item {seen[key]}")
            seen[key] = i
        records.append(normalized_record(spec, i, instruction, input_, output, answer))
    return records


_CALCULATOR = re.compile(r"<<[^>]*>>")


def load_gsm8k_jsonl(path, spec: DatasetSpec) -> list[dict]:
    """grade-school-math: {question, answer} with the rationale, <<calc>> annotations and '#### N'."""
    records = []
    for i, item in enumerate(_read_jsonl(path)):
        question = field_of(path, i, item, "question", str)
        solution = field_of(path, i, item, "answer", str)
        if "####" not in solution:
            raise DataError(f"{path}: item {i}: field 'answer' has no '#### <number>' final answer")
        rationale, final = solution.rsplit("####", 1)
        answer = gold_answer(path, i, spec, final)
        rationale = _CALCULATOR.sub("", rationale).strip()
        output = f"{rationale}\nThe answer is {format_number(float(answer[0]))}."
        records.append(normalized_record(spec, i, question, "", output, answer))
    return records


def load_mawps_equations(path, spec: DatasetSpec) -> list[dict]:
    """MAWPS train split: {original_text, equation 'X=(...)', ans}; the response states the equation."""
    records = []
    for i, item in enumerate(_read_json_list(path)):
        question = field_of(path, i, item, "original_text", str)
        equation = field_of(path, i, item, "equation", str)
        answer = gold_answer(path, i, spec, field_of(path, i, item, "ans", (int, float, str)))
        expression = equation.split("=", 1)[1] if equation.upper().startswith("X=") else equation
        shown = format_number(float(answer[0]))
        output = f"{expression} = {shown}. The answer is {shown}."
        records.append(normalized_record(spec, i, question.strip(), "", output, answer))
    return records


LOADERS: dict[str, Callable[[Path, DatasetSpec], list[dict]]] = {
    "llm_adapters": load_llm_adapters,
    "gsm8k_jsonl": load_gsm8k_jsonl,
    "mawps_equations": load_mawps_equations,
}
