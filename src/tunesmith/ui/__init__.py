"""The web studio (`tunesmith ui`): runs, new runs, data checks, a playground and feedback, in a browser."""
