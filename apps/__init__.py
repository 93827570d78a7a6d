"""The Gradio apps: `python apps/NAME.py` in a clone, `llmkit app NAME` anywhere (the wheel ships this folder as
`llmkit.apps`). Each module defines `main(argv)`."""

# command name -> module, and its line in `llmkit app --help`
APPS = {
    "models": ("models", "play with the models the recipes produce"),
    "rag-chat": ("rag_chat", "chat with your documents, answers citing their sources"),
    "classic": ("classic", "the classic baselines: MLP playground, samples, curves"),
}
