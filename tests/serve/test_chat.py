"""`tunesmith chat` as a person uses it: in a real pseudo-terminal (pexpect), typing and reading the
screen — streamed answers, the base switch, /compare, /save, multi-line input, Ctrl-C stopping an answer
but not the program; and the same commands scripted on standard input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect


def spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "tunesmith", "chat", *args], encoding="utf-8", timeout=60,
                          dimensions=(40, 140))
    child.expect("/help for commands")
    child.expect("you> ")
    return child


def test_chat_in_a_terminal(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    saved = tmp_path / "chats.jsonl"
    child = spawn(str(tiny_runs["yes"]), "--max-new-tokens", "12")
    child.sendline("Say something.")
    child.expect("yes> ")
    child.expect("Yes, certainly")
    child.expect("you> ")
    child.sendline("first line \\")
    child.expect(r"\.\.\.> ")
    child.sendline("second line")
    child.expect("Yes")
    child.expect("you> ")
    child.sendline(f"/save {saved}")
    child.expect(r"appended 4 messages")
    child.expect("you> ")
    child.sendline("/base")
    child.expect("now answering with tiny-llama")
    child.expect("you> ")
    child.sendline("/tuned")
    child.expect("now answering with yes")
    child.expect("you> ")
    child.sendline("/compare")  # both answers to the last (two-line) prompt, which the runs never saw
    child.expect("tiny-llama")
    child.expect("Yes")
    child.expect("you> ")
    child.sendline("/nonsense")
    child.expect("unknown command /nonsense")
    child.sendline("/quit")
    child.expect("bye")
    child.expect(pexpect.EOF)
    record = json.loads(saved.read_text())
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "user", "assistant"]
    assert record["messages"][2]["content"] == "first line \nsecond line"
    assert record["messages"][1]["content"].startswith("Yes, certainly")


def test_ctrl_c_stops_the_answer_not_the_program(tiny_runs: dict[str, Path]) -> None:
    # the base model never stops on its own: a long answer to interrupt
    child = spawn(str(tiny_runs["no"]), "--max-new-tokens", "100000", "--temperature", "1.0", "--seed", "1")
    child.sendline("/base")
    child.expect("you> ")
    child.sendline("Talk forever.")
    child.expect(r"tiny-llama\d*> ")
    child.expect(r"\S", timeout=30)  # tokens are streaming
    child.sendintr()
    child.expect(r"\[stopped\]", timeout=30)
    child.expect("you> ")
    child.sendline("/help")  # still alive and listening
    child.expect("commands:")
    child.expect("you> ")
    child.sendintr()  # at the prompt: clears the line
    # CPython's readline misses a SIGINT that lands between drawing the prompt and entering its select()
    # (it is handled at the next key; seen once under a loaded suite): a person presses again, the test too
    if child.expect(["cleared", pexpect.TIMEOUT], timeout=5) == 1:
        child.sendintr()
        child.expect("cleared")
    child.sendeof()
    child.expect("bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_reads_a_script_from_standard_input(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    script = "/system Answer briefly.\n/system\nSay something.\n/reset\n/compare\n/quit\n"
    done = subprocess.run([sys.executable, "-m", "tunesmith", "chat", str(tiny_runs["yes"]), "--max-new-tokens", "6"],
                          input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(system prompt: Answer briefly.)" in done.stdout
    assert "yes> Yes" in done.stdout
    assert "nothing to compare yet" in done.stdout  # /reset forgot the conversation
    assert done.stdout.rstrip().endswith("bye")
