"""Local-model advice: loading (GGUF -> safetensors cache), prompts, generation, verification.

Nothing here imports torch or transformers at module level.
"""
