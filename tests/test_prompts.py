from pipeline_lib.prompts import alpaca_prompt, alpaca_training_text

# Copied by hand from LLM-Adapters finetune.py generate_prompt (16-space indented f-string, literal noqa).
UPSTREAM_NO_INPUT = """Below is an instruction that describes a task. Write a response that appropriately completes the request.  # noqa: E501

                ### Instruction:
                How many?
                
                ### Response:
                Two. The answer is 2."""
UPSTREAM_WITH_INPUT = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.  # noqa: E501

                ### Instruction:
                How many?
                
                ### Input:
                Some context
                
                ### Response:
                """


def test_alpaca_prompt_is_byte_exact():
    record = {"instruction": "How many?", "input": "", "output": "Two. The answer is 2."}
    assert alpaca_training_text(record) == UPSTREAM_NO_INPUT
    assert alpaca_prompt("How many?", "Some context") == UPSTREAM_WITH_INPUT


def test_training_text_extends_the_evaluation_prompt():
    record = {"instruction": "Q", "input": "", "output": "A"}
    assert alpaca_training_text(record) == alpaca_prompt("Q") + "A"
