"""The one inference path (`engine.run_batch`) and its sampling settings: below tasks and evaluation (which
generate sample answers with it) and below every reader (chat, generate, serve, export verification)."""
