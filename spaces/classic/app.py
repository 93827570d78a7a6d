"""Hugging Face Space: the classic baselines; ./model holds the recipes' outputs (cnn/, gan/, vae/, ddpm/, char-lstm/)."""

from pathlib import Path

from llmkit.spaces.templates import space_title
from llmkit.ui.classic import build_classic_app

HERE = Path(__file__).resolve().parent
FOLDERS = {"cnn": "cnn", "gan": "gan", "vae": "vae", "diffusion": "ddpm", "char_rnn": "char-lstm"}
demo = build_classic_app(
    **{
        k: str(HERE / "model" / v)
        for k, v in FOLDERS.items()
        if (HERE / "model" / v / "config.json").is_file()
    },
    title=space_title(HERE, "The classics"),
)

if __name__ == "__main__":
    demo.queue().launch()
