"""Loading models and tokenizers from folders, GGUF files, the local hub cache and packaged aliases."""
