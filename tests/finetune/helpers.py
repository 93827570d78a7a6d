"""Flags and texts the fine-tuning tests share, and a helper that runs a recipe in-process."""

from llmkit.finetune.common import packaged_minilm

MINILM = ["--model_name_or_path", packaged_minilm()]  # a real pretrained BERT-family encoder, offline
FAST = [
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "16",
    "--logging_steps",
    "5",
    "--disable_tqdm",
    "true",
    "--save_total_limit",
    "1",
]

ANIMALS = [
    "The cat sat on the warm mat and purred.",
    "A dog barked at the mail carrier.",
    "The parrot repeated every word.",
    "Our rabbit hops around the garden.",
    "The horse galloped across the field.",
    "A kitten chased a ball of yarn.",
    "The goldfish swims in circles.",
    "Wolves howl at night in the forest.",
]
MONEY = [
    "The bank raised its interest rate again.",
    "Stocks fell sharply after the earnings report.",
    "She paid the invoice by wire transfer.",
    "Inflation eroded the value of savings.",
    "The bond yield climbed to five percent.",
    "He refinanced the mortgage at a lower rate.",
    "Quarterly revenue beat the forecast.",
    "The budget deficit widened this year.",
]


def run(recipe_main, argv):
    """Run a recipe's main() in this process, as `python recipes/X.py argv` would."""
    return recipe_main(argv)
