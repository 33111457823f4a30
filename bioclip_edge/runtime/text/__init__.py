"""Label text: tokenizer, text recipes, the text encoder. May import ``runtime.inference``."""
