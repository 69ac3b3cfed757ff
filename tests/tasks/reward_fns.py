"""Reward functions for the RL tests, named in configs as tests.tasks.reward_fns:NAME."""


def boom(prompt: str, completion: str) -> float:
    raise ValueError("cannot score this")


def not_a_number(prompt: str, completion: str) -> str:
    return "high"
