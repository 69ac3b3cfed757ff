"""Using a tuned model: the inference engine, chat, batch generation and the OpenAI-compatible server."""
